"""Backbone families by the prefix `featurize.backbone.name` takes (`timm:<model>`; a bare
name is torchvision's). Adding one is a file in this folder (a `base.BackboneFamily`) and a
line in `FAMILIES`."""
from __future__ import annotations

from featurize.backbone_families import open_clip_family, timm_family, torchvision_family
from featurize.backbone_families.base import BackboneFamily, Preprocess, WeightsUnavailable

FAMILIES: dict[str, BackboneFamily] = {
    torchvision_family.FAMILY.name: torchvision_family.FAMILY,
    timm_family.FAMILY.name: timm_family.FAMILY,
    open_clip_family.FAMILY.name: open_clip_family.FAMILY,
}

__all__ = ["FAMILIES", "BackboneFamily", "Preprocess", "WeightsUnavailable", "family_of"]


def family_of(name: str) -> tuple[BackboneFamily, str]:
    """`timm:vit_small_patch16_224` -> (the timm family, "vit_small_patch16_224")."""
    fam, _, model = name.partition(":") if ":" in name else ("torchvision", "", name)
    if fam not in FAMILIES:
        raise ValueError(f"backbone {name!r}: unknown family {fam!r}; expected a torchvision model name, "
                         + ", ".join(f"{f}:<name>" for f in FAMILIES if f != "torchvision"))
    return FAMILIES[fam], model
