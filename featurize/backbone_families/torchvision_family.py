"""torchvision classification models by their bare names (the paper's resnet152).

`imagenet` is pinned to torchvision's IMAGENET1K_V1, the original ImageNet training the
paper used, with its 256 -> 224 eval transform; torchvision's DEFAULT for the larger
ResNets is IMAGENET1K_V2, a newer recipe whose eval resizes to 232: it is the named
option `imagenet_v2`, with its own resize.
"""
from __future__ import annotations

import os

from featurize.backbone_families.base import (IMAGENET_MEAN, IMAGENET_STD, BackboneFamily, Preprocess,
                                              WeightsUnavailable)

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
WEIGHTS = {"imagenet": "IMAGENET1K_V1", "imagenet_v2": "IMAGENET1K_V2"}   # featurize.backbone.weights -> enum


def weights_enum(model: str, weights: str):
    """The torchvision weights enum of an ImageNet choice (no download), None otherwise."""
    if weights not in WEIGHTS:
        return None
    import torchvision  # lazy: families are declared without torch
    enums = torchvision.models.get_model_weights(model)
    if not hasattr(enums, WEIGHTS[weights]):
        raise WeightsUnavailable(f"{model} has no {WEIGHTS[weights]} weights in torchvision "
                                 f"(featurize.backbone.weights={weights}); use imagenet")
    return getattr(enums, WEIGHTS[weights])


def strip_classifier(model):
    """A torchvision classifier -> its penultimate features: the last linear layer becomes
    identity (ResNet's `fc`, the last layer of VGG's or EfficientNet's `classifier`, ViT's head)."""
    from torch import nn  # lazy: families are declared without torch
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no linear classifier to take features before")
    parent = model.get_submodule(last.rpartition(".")[0]) if "." in last else model
    setattr(parent, last.rpartition(".")[2], nn.Identity())
    return model


class Torchvision(BackboneFamily):
    name = "torchvision"
    pretrained_weights = tuple(WEIGHTS)
    records_preprocess = False          # implied by the recorded resize and weights enum
    weights_kind = "ImageNet weights"

    def preprocess(self, model, cfg) -> Preprocess:
        """The weights' eval transform: 256/224 of the crop for V1 (the paper's), 232/224 for
        V2; ImageNet mean and std."""
        enum = weights_enum(model, cfg.weights)
        ratio = 256 / 224
        if enum is not None:
            t = enum.transforms()
            ratio = t.resize_size[0] / t.crop_size[0]
        return Preprocess(int(round(cfg.image_size * ratio)), cfg.image_size, IMAGENET_MEAN, IMAGENET_STD)

    def build(self, model, cfg, pretrained):
        import torchvision  # lazy: families are declared without torch
        if model not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(f"backbone {cfg.name!r} is not a torchvision classification model "
                             f"(e.g. {', '.join(RESNETS)}, convnext_tiny, vit_b_16)")
        return strip_classifier(torchvision.models.get_model(
            model, weights=weights_enum(model, cfg.weights) if pretrained else None))

    def feature_dim(self, model, cfg) -> int:
        if model in RESNETS:
            return 512 if model in ("resnet18", "resnet34") else 2048
        return super().feature_dim(model, cfg)

    def weights_cached(self, model, cfg) -> bool:
        import torch  # lazy: families are declared without torch
        enum = weights_enum(model, cfg.weights)
        return enum is not None and os.path.exists(
            os.path.join(torch.hub.get_dir(), "checkpoints", enum.url.rsplit("/", 1)[-1]))

    def weights_name(self, model, cfg) -> str:
        return str(weights_enum(model, cfg.weights))

    def weights_hint(self, model, cfg) -> str:
        import torch  # lazy: families are declared without torch
        return (f"Put {weights_enum(model, cfg.weights).url.rsplit('/', 1)[-1]} under {torch.hub.get_dir()}/checkpoints "
                "on every node (or set TORCH_HOME)")


FAMILY = Torchvision()
