"""The frozen image backbone and the keyframe embedder used by the Ray actor pool.

ResNet-152 pretrained on ImageNet is the paper's default. `featurize.backbone.name` takes
any torchvision classification model, and, beyond the paper, `timm:<name>` and
`open_clip:<arch>/<pretrained>` image towers (the `backbones` extra). Each brings its own
preprocessing (`Preprocess`: short-side resize, centre crop, mean and std from its
weights) and its feature length (the input of its last linear layer, timm's pooled
features, CLIP's embedding), which the store records.

`imagenet` is pinned to torchvision's IMAGENET1K_V1, the original ImageNet training the
paper used, with its 256 -> 224 eval transform; torchvision's DEFAULT for the larger
ResNets is IMAGENET1K_V2, a newer recipe whose eval resizes to 232: it is the named
option `imagenet_v2`, with its own resize.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import torch
import torchvision
from torch import nn

from featurize.audio import spectrograms_torch
from featurize.config import BackboneConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
FAMILIES = ("torchvision", "timm", "open_clip")


class WeightsUnavailable(RuntimeError):
    pass


WEIGHTS = {"imagenet": "IMAGENET1K_V1", "imagenet_v2": "IMAGENET1K_V2"}   # featurize.backbone.weights -> enum


@dataclass(frozen=True)
class Preprocess:
    """How a keyframe becomes the network's input: short side resized to `resize` (area
    averaging, by the decoder), centre crop `crop`, then (x / 255 - mean) / std."""
    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def family(name: str) -> tuple[str, str]:
    """`timm:vit_small_patch16_224` -> ("timm", "vit_small_patch16_224"); a bare name is torchvision's."""
    fam, _, model = name.partition(":") if ":" in name else ("torchvision", "", name)
    if fam not in FAMILIES:
        raise ValueError(f"backbone {name!r}: unknown family {fam!r}; expected a torchvision model name, "
                         "timm:<name> or open_clip:<arch>/<pretrained>")
    return fam, model


def _require(module: str, extra: str = "backbones"):
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"this backbone needs the {module} package: pip install 'ctt-mmc[{extra}]'") from None


def _open_clip_names(model: str) -> tuple[str, str]:
    arch, _, tag = model.partition("/")
    if not tag:
        raise ValueError(f"open_clip backbone {model!r}: expected open_clip:<arch>/<pretrained>, e.g. ViT-B-32/openai")
    return arch, tag


def weights_enum(cfg: BackboneConfig):
    """The torchvision weights enum of an ImageNet choice (no download), None otherwise."""
    if cfg.weights not in WEIGHTS or family(cfg.name)[0] != "torchvision":
        return None
    enums = torchvision.models.get_model_weights(cfg.name)
    if not hasattr(enums, WEIGHTS[cfg.weights]):
        raise WeightsUnavailable(f"{cfg.name} has no {WEIGHTS[cfg.weights]} weights in torchvision "
                         f"(featurize.backbone.weights={cfg.weights}); use imagenet")
    return getattr(enums, WEIGHTS[cfg.weights])


@functools.lru_cache(maxsize=32)
def _preprocess(name: str, weights: str, image_size: int) -> Preprocess:
    cfg = BackboneConfig(name=name, weights=weights, image_size=image_size)
    fam, model = family(cfg.name)
    if fam == "timm":
        pc = _require("timm").models.get_pretrained_cfg(model)
        if pc is None:
            raise ValueError(f"timm has no model {model!r}")
        crop = int(pc.input_size[-1])
        return Preprocess(int(crop / pc.crop_pct), crop, tuple(pc.mean), tuple(pc.std))
    if fam == "open_clip":
        oc = _require("open_clip")
        arch, tag = _open_clip_names(model)
        mc = oc.get_model_config(arch)
        if mc is None:
            raise ValueError(f"open_clip has no model {arch!r}")
        size = mc["vision_cfg"].get("image_size", 224)
        size = int(size if isinstance(size, int) else size[0])
        pc = oc.get_pretrained_cfg(arch, tag) or {}
        return Preprocess(size, size, tuple(pc.get("mean", oc.constants.OPENAI_DATASET_MEAN)),
                          tuple(pc.get("std", oc.constants.OPENAI_DATASET_STD)))
    enum = weights_enum(cfg)
    ratio = 256 / 224
    if enum is not None:
        t = enum.transforms()
        ratio = t.resize_size[0] / t.crop_size[0]
    return Preprocess(int(round(cfg.image_size * ratio)), cfg.image_size, IMAGENET_MEAN, IMAGENET_STD)


def preprocess(cfg: BackboneConfig) -> Preprocess:
    """The backbone's own preprocessing: from its weights' eval transform for torchvision
    (256/224 of the crop for V1, the paper's; 232/224 for V2; ImageNet mean and std),
    timm's pretrained config (input size, crop_pct, mean, std), CLIP's image size and
    normalisation for open_clip. Read from configs and enums: no network is built."""
    return _preprocess(cfg.name, cfg.weights, cfg.image_size)


def resize_short(cfg: BackboneConfig) -> int:
    """The short side keyframes are resized to before the centre crop."""
    return preprocess(cfg).resize


def crop_size(cfg: BackboneConfig) -> int:
    return preprocess(cfg).crop


def _read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    with fsspec.open(path, "rb") as fh:
        obj = torch.load(fh, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    # Places365 releases were saved from DataParallel: keys start with `module.`.
    return {k.removeprefix("module."): v for k, v in state.items()}


def _strip_classifier(model: nn.Module) -> nn.Module:
    """A torchvision classifier -> its penultimate features: the last linear layer becomes
    identity (ResNet's `fc`, the last layer of VGG's or EfficientNet's `classifier`, ViT's head)."""
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no linear classifier to take features before")
    parent = model.get_submodule(last.rpartition(".")[0]) if "." in last else model
    setattr(parent, last.rpartition(".")[2], nn.Identity())
    return model


def _build(cfg: BackboneConfig, pretrained: bool) -> nn.Module:
    """The network without its classifier, random or with its family's pretrained weights."""
    fam, model = family(cfg.name)
    if fam == "timm":
        return _require("timm").create_model(model, pretrained=pretrained, num_classes=0)
    if fam == "open_clip":
        arch, tag = _open_clip_names(model)
        return _require("open_clip").create_model(arch, pretrained=tag if pretrained else None).visual
    if model not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"backbone {cfg.name!r} is not a torchvision classification model "
                         f"(e.g. {', '.join(RESNETS)}, convnext_tiny, vit_b_16)")
    return _strip_classifier(torchvision.models.get_model(model, weights=weights_enum(cfg) if pretrained else None))


def load_backbone(cfg: BackboneConfig) -> nn.Module:
    """The frozen network: images (N, 3, crop, crop) -> (N, feature_dim)."""
    fam = family(cfg.name)[0]
    if cfg.weights in WEIGHTS or (cfg.weights == "pretrained" and fam != "torchvision"):
        what = weights_enum(cfg) if fam == "torchvision" else f"{cfg.name} pretrained weights"
        try:
            model = _build(cfg, pretrained=True)
        except (ValueError, WeightsUnavailable):
            raise
        except Exception as e:  # offline machine, proxy, corrupt cache...
            where = (f"Put {what.url.rsplit('/', 1)[-1]} under {torch.hub.get_dir()}/checkpoints on every node "
                     "(or set TORCH_HOME)") if fam == "torchvision" else \
                "Fill the Hugging Face cache (HF_HOME) on every node"
            raise WeightsUnavailable(
                f"{'ImageNet weights' if fam == 'torchvision' else 'Weights'} for {cfg.name} ({what}) could not be loaded: {type(e).__name__}: {e}. {where}, "
                f"or use featurize.backbone.weights=checkpoint featurize.backbone.checkpoint=PATH; "
                f"weights=none is for tests only.") from e
    elif cfg.weights == "checkpoint":
        if not cfg.checkpoint:
            raise WeightsUnavailable("featurize.backbone.weights=checkpoint needs featurize.backbone.checkpoint=PATH")
        model = _build(cfg, pretrained=False)
        try:
            state = _read_checkpoint(cfg.checkpoint)
        except Exception as e:
            raise WeightsUnavailable(f"cannot read backbone checkpoint {cfg.checkpoint}: {e}") from e
        mine = set(model.state_dict())
        state = {k: v for k, v in state.items() if k in mine or not k.startswith(("fc.", "classifier.", "head"))}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsUnavailable(
                f"checkpoint {cfg.checkpoint} does not fit {cfg.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    elif cfg.weights == "none":
        with torch.random.fork_rng(devices=[]):   # the same random network in every actor and every run
            torch.manual_seed(0)
            model = _build(cfg, pretrained=False)
    else:
        raise ValueError(f"unknown weights {cfg.weights!r}")
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=32)
def _feature_dim(name: str, image_size: int) -> int:
    cfg = BackboneConfig(name=name, weights="none", image_size=image_size)
    if cfg.name in RESNETS:
        return 512 if cfg.name in ("resnet18", "resnet34") else 2048
    fam, model = family(cfg.name)
    if fam == "open_clip":                           # the image tower projects into CLIP's embedding
        return int(_require("open_clip").get_model_config(_open_clip_names(model)[0])["embed_dim"])
    with torch.device("meta"):                       # shapes only: no memory, no weights
        model = _build(cfg, pretrained=False)
        return int(model(torch.zeros(1, 3, crop_size(cfg), crop_size(cfg))).shape[-1])


def feature_dim(cfg: BackboneConfig) -> int:
    """Length of one keyframe's features, from the network's own shapes."""
    return _feature_dim(cfg.name, cfg.image_size)


def label(cfg: BackboneConfig) -> str:
    what = {"imagenet": "ImageNet weights (IMAGENET1K_V1)", "imagenet_v2": "ImageNet weights (IMAGENET1K_V2)",
            "pretrained": "its pretrained weights",
            "none": "NO pretrained weights (random init: tests/demo only)",
            "checkpoint": f"weights from {cfg.checkpoint}"}[cfg.weights]
    return f"{cfg.name} with {what}, {feature_dim(cfg)}-d features"


class FrameEmbedder:
    """Callable for `map_batches`: batch['keyframes'] (per trailer (t, S, S, 3) uint8) -> batch['frames'].

    Trailers of a batch are concatenated and run in chunks of `batch_size` keyframes,
    so the model always sees full batches whatever the shot counts.
    """

    def __init__(self, cfg: BackboneConfig, device: str = "auto"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.cfg = cfg
        self.model = load_backbone(cfg).to(self.device)
        self.gpu = self.device.type == "cuda"
        if self.gpu and cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        pre = preprocess(cfg)
        self.mean = torch.tensor(pre.mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(pre.std, device=self.device).view(1, 3, 1, 1) * 255
        self.crop = pre.crop
        self.dim = feature_dim(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (n, 3, s, s) on the device -> (n, dim) float32, in the actor's precision and layout."""
        if self.gpu and self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.gpu and self.cfg.bf16):
            return self.model(x).float()

    @torch.inference_mode()
    def embed(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, dim) float32; with ten_crop, S is the 256-px square."""
        out = []
        step = max(1, self.cfg.batch_size // 10) if self.cfg.ten_crop else self.cfg.batch_size
        for i in range(0, len(images), step):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + step]))
            x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
            x = (x - self.mean) / self.std
            if not (self.gpu and self.cfg.channels_last):
                x = x.contiguous()           # NCHW: the permuted (NHWC-strided) view takes a slow CPU conv path
            if self.cfg.ten_crop:
                crops = ten_crops(x, self.crop)                    # (10, n, 3, s, s)
                f = self.forward(crops.flatten(0, 1)).view(10, len(x), -1).mean(0)
            else:
                f = self.forward(x)
            out.append(f.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        kfs = [np.asarray(k) for k in batch["keyframes"]]
        counts = [len(k) for k in kfs]
        nonempty = [k for k in kfs if len(k)]
        feats = self.embed(np.concatenate(nonempty)) if nonempty else np.zeros((0, self.dim), np.float32)
        splits = np.split(feats, np.cumsum(counts)[:-1]) if counts else []
        out = {k: v for k, v in batch.items() if k not in ("keyframes", "audio")}
        out["frames"] = _object_array([s.astype(np.float32) for s in splits])
        if "audio" in batch and any(len(a) for a in batch["audio"]):
            out.update(self.spectrograms(batch))
        return out

    def spectrograms(self, batch: dict[str, Any]) -> dict[str, Any]:
        """torch.stft on this actor's device for rows whose decode task sent raw audio."""
        specs, counts, padded = list(batch["spectrograms"]), list(batch["num_windows"]), list(batch["audio_padded"])
        for i, y in enumerate(batch["audio"]):
            if len(y):
                S, pad = spectrograms_torch(np.asarray(y, np.float32), str(self.device))
                specs[i] = S.reshape(len(S), -1).half().cpu().numpy()
                counts[i], padded[i] = len(S), pad
        return {"spectrograms": _object_array(specs), "num_windows": np.asarray(counts, np.int64),
                "audio_padded": np.asarray(padded, bool)}


def ten_crops(x: torch.Tensor, size: int) -> torch.Tensor:
    """(n, 3, S, S) -> (10, n, 3, size, size): four corners and the centre, then their mirror images."""
    S = x.shape[-1]
    c = (S - size) // 2
    corners = [(0, 0), (0, S - size), (S - size, 0), (S - size, S - size), (c, c)]
    crops = torch.stack([x[..., i:i + size, j:j + size] for i, j in corners])
    return torch.cat([crops, crops.flip(-1)])


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr
