"""timm image models as `timm:<name>` (beyond the paper; the `backbones` extra): pooled
features, timm's own pretrained config for preprocessing."""
from __future__ import annotations

from featurize.backbone_families.base import BackboneFamily, Preprocess, require_package


class Timm(BackboneFamily):
    name = "timm"
    requirement = "timm"

    def preprocess(self, model, cfg) -> Preprocess:
        pc = require_package("timm").models.get_pretrained_cfg(model)
        if pc is None:
            raise ValueError(f"timm has no model {model!r}")
        crop = int(pc.input_size[-1])
        return Preprocess(int(crop / pc.crop_pct), crop, tuple(pc.mean), tuple(pc.std))

    def build(self, model, cfg, pretrained):
        return require_package("timm").create_model(model, pretrained=pretrained, num_classes=0)


FAMILY = Timm()
