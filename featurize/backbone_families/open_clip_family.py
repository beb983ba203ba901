"""OpenCLIP image towers as `open_clip:<arch>/<pretrained>` (beyond the paper; the
`backbones` extra): the tower's projection into CLIP's embedding is the feature."""
from __future__ import annotations

from featurize.backbone_families.base import BackboneFamily, Preprocess, require_package


def names(model: str) -> tuple[str, str]:
    arch, _, tag = model.partition("/")
    if not tag:
        raise ValueError(f"open_clip backbone {model!r}: expected open_clip:<arch>/<pretrained>, e.g. ViT-B-32/openai")
    return arch, tag


class OpenClip(BackboneFamily):
    name = "open_clip"
    requirement = "open_clip_torch"

    def preprocess(self, model, cfg) -> Preprocess:
        oc = require_package("open_clip")
        arch, tag = names(model)
        mc = oc.get_model_config(arch)
        if mc is None:
            raise ValueError(f"open_clip has no model {arch!r}")
        size = mc["vision_cfg"].get("image_size", 224)
        size = int(size if isinstance(size, int) else size[0])
        pc = oc.get_pretrained_cfg(arch, tag) or {}
        return Preprocess(size, size, tuple(pc.get("mean", oc.constants.OPENAI_DATASET_MEAN)),
                          tuple(pc.get("std", oc.constants.OPENAI_DATASET_STD)))

    def build(self, model, cfg, pretrained):
        arch, tag = names(model)
        return require_package("open_clip").create_model(arch, pretrained=tag if pretrained else None).visual

    def feature_dim(self, model, cfg) -> int:
        return int(require_package("open_clip").get_model_config(names(model)[0])["embed_dim"])


FAMILY = OpenClip()
