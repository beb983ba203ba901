"""What a backbone family declares, so the embedder, the decode pass's keyframe size, the
store's settings and the served model's requirements treat every family alike: how to
build the network without its classifier, its preprocessing, its feature length, which
`featurize.backbone.weights` values mean "its pretrained weights", and where those
weights must be when they cannot be loaded."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:                       # families are declared before torch is imported
    from torch import nn

    from featurize.config import BackboneConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Preprocess:
    """How a keyframe becomes the network's input: short side resized to `resize` (area
    averaging, by the decoder), centre crop `crop`, then (x / 255 - mean) / std."""
    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def require_package(module: str, extra: str = "backbones"):
    """The optional package a family runs on, or a one-line error with what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"this backbone needs the {module} package: pip install 'ctt-mmc[{extra}]'") from None


class BackboneFamily:
    """A family's declaration; subclass it in one file of this folder and add it to the
    registry (`featurize.backbone_families.FAMILIES`). `model` is the name after the
    family's prefix (`timm:<model>`)."""

    name: str = ""
    requirement: str = ""                   # the pip package it needs beyond the core ("": none)
    pretrained_weights: tuple[str, ...] = ("imagenet", "imagenet_v2", "pretrained")
    records_preprocess: bool = True          # the store records its `Preprocess` (not implied by resize + weights)
    weights_kind: str = "Weights"            # what its pretrained weights are, for messages

    def preprocess(self, model: str, cfg: BackboneConfig) -> Preprocess:
        """Read from its configs: no network is built."""
        raise NotImplementedError

    def build(self, model: str, cfg: BackboneConfig, pretrained: bool) -> nn.Module:
        """The network without its classifier: (N, 3, crop, crop) -> (N, feature_dim)."""
        raise NotImplementedError

    def feature_dim(self, model: str, cfg: BackboneConfig) -> int:
        """From the network's own shapes, on the meta device: no memory, no weights."""
        import torch  # lazy: families are declared without torch
        with torch.device("meta"):
            crop = self.preprocess(model, cfg).crop
            return int(self.build(model, cfg, pretrained=False)(torch.zeros(1, 3, crop, crop)).shape[-1])

    def weights_cached(self, model: str, cfg: BackboneConfig) -> bool:
        """Its pretrained weights are on this machine already (no network is built to tell);
        False where it cannot tell without loading them."""
        return False

    def weights_name(self, model: str, cfg: BackboneConfig) -> str:
        """Which pretrained weights, for messages."""
        return f"{cfg.name} pretrained weights"

    def weights_hint(self, model: str, cfg: BackboneConfig) -> str:
        """Where pretrained weights must be put when they could not be loaded."""
        return "Fill the Hugging Face cache (HF_HOME) on every node"
