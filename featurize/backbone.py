"""The frozen image backbone and the keyframe embedder used by the Ray actor pool.

ResNet-152 pretrained on ImageNet is the paper's default. `featurize.backbone.name` takes
any torchvision classification model, and, beyond the paper, `timm:<name>` and
`open_clip:<arch>/<pretrained>` image towers (the `backbones` extra). Each family
(`featurize.backbone_families`) brings its own build, preprocessing (`Preprocess`:
short-side resize, centre crop, mean and std from its weights) and feature length, which
the store records; this module holds what is common to all of them.
"""
from __future__ import annotations

import functools
from typing import Any

import fsspec
import numpy as np
import torch
from torch import nn

from featurize.audio import spectrograms_torch
from featurize.backbone_families import family_of
from featurize.backbone_families.base import Preprocess, WeightsUnavailable
from featurize.backbone_families.torchvision_family import WEIGHTS
from featurize.config import BackboneConfig
from featurize.video import KeyframeGeometry

__all__ = ["WEIGHTS", "FrameEmbedder", "Preprocess", "WeightsUnavailable", "check_weights", "crop_size",
           "feature_dim",
           "keyframe_geometry", "label", "load_backbone", "preprocess", "resize_short"]


@functools.lru_cache(maxsize=32)
def _preprocess(name: str, weights: str, image_size: int) -> Preprocess:
    fam, model = family_of(name)
    return fam.preprocess(model, BackboneConfig(name=name, weights=weights, image_size=image_size))


def preprocess(cfg: BackboneConfig) -> Preprocess:
    """The backbone's own preprocessing, as its family declares it: from its weights' eval
    transform for torchvision, timm's pretrained config, CLIP's image size and normalisation.
    Read from configs and enums: no network is built."""
    return _preprocess(cfg.name, cfg.weights, cfg.image_size)


def resize_short(cfg: BackboneConfig) -> int:
    """The short side keyframes are resized to before the centre crop."""
    return preprocess(cfg).resize


def crop_size(cfg: BackboneConfig) -> int:
    return preprocess(cfg).crop


def keyframe_geometry(cfg: BackboneConfig) -> KeyframeGeometry:
    """How the decode pass cuts keyframes for this backbone: the weights' eval resize (256/224
    of the crop for the paper's), then the crop itself, or the whole square 10-crop cuts from."""
    pre = preprocess(cfg)
    return KeyframeGeometry(short=pre.resize, size=pre.resize if cfg.ten_crop else pre.crop)


def _read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    with fsspec.open(path, "rb") as fh:
        obj = torch.load(fh, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    # Places365 releases were saved from DataParallel: keys start with `module.`.
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone(cfg: BackboneConfig) -> nn.Module:
    """The frozen network: images (N, 3, crop, crop) -> (N, feature_dim)."""
    fam, model_name = family_of(cfg.name)
    if cfg.weights in fam.pretrained_weights:
        try:
            model = fam.build(model_name, cfg, pretrained=True)
        except (ValueError, WeightsUnavailable):
            raise
        except Exception as e:  # offline machine, proxy, corrupt cache...
            raise WeightsUnavailable(
                f"{fam.weights_kind} for {cfg.name} ({fam.weights_name(model_name, cfg)}) could not be loaded: "
                f"{type(e).__name__}: {e}. "
                f"{fam.weights_hint(model_name, cfg)}, "
                f"or use featurize.backbone.weights=checkpoint featurize.backbone.checkpoint=PATH; "
                f"weights=none is for tests only.") from e
    elif cfg.weights == "checkpoint":
        if not cfg.checkpoint:
            raise WeightsUnavailable("featurize.backbone.weights=checkpoint needs featurize.backbone.checkpoint=PATH")
        model = fam.build(model_name, cfg, pretrained=False)
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
            model = fam.build(model_name, cfg, pretrained=False)
    else:
        raise ValueError(f"unknown weights {cfg.weights!r} for a {fam.name} backbone")
    return model.eval().requires_grad_(False)


def check_weights(cfg: BackboneConfig) -> None:
    """Raise WeightsUnavailable before any work where the actors could not load the weights:
    staged pretrained weights pass at once; otherwise they are loaded here (a download, or a
    checkpoint checked against the network), with the error that says what to do."""
    fam, model = family_of(cfg.name)
    if cfg.weights == "none" or (cfg.weights in fam.pretrained_weights and fam.weights_cached(model, cfg)):
        return
    load_backbone(cfg)


@functools.lru_cache(maxsize=32)
def _feature_dim(name: str, image_size: int) -> int:
    fam, model = family_of(name)
    return fam.feature_dim(model, BackboneConfig(name=name, weights="none", image_size=image_size))


def feature_dim(cfg: BackboneConfig) -> int:
    """Length of one keyframe's features, as its family measures it."""
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
