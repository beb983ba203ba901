"""The frozen image backbone and the keyframe embedder used by the Ray actor pool.

ResNet-152 pretrained on ImageNet is the paper's default; any torchvision ResNet,
no weights (tests, demo), or a user checkpoint such as Places365 can be chosen.
The penultimate layer (global average pool) gives one vector per keyframe.

`imagenet` is pinned to torchvision's IMAGENET1K_V1, the original ImageNet training the
paper used, with its 256 -> 224 eval transform; torchvision's DEFAULT for the larger
ResNets is IMAGENET1K_V2, a newer recipe whose eval resizes to 232: it is the named
option `imagenet_v2`, with its own resize.
"""
from __future__ import annotations

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


class WeightsUnavailable(RuntimeError):
    pass


WEIGHTS = {"imagenet": "IMAGENET1K_V1", "imagenet_v2": "IMAGENET1K_V2"}   # featurize.backbone.weights -> enum


def weights_enum(cfg: BackboneConfig):
    """The torchvision weights enum of an ImageNet choice (no download), None otherwise."""
    if cfg.weights not in WEIGHTS:
        return None
    enums = torchvision.models.get_model_weights(cfg.name)
    if not hasattr(enums, WEIGHTS[cfg.weights]):
        raise WeightsUnavailable(f"{cfg.name} has no {WEIGHTS[cfg.weights]} weights in torchvision "
                         f"(featurize.backbone.weights={cfg.weights}); use imagenet")
    return getattr(enums, WEIGHTS[cfg.weights])


def resize_short(cfg: BackboneConfig) -> int:
    """The short side keyframes are resized to before the image_size crop: the weights' own
    eval transform (256/224 of the crop for V1, the paper's and torchvision's classic
    recipe; 232/224 for V2)."""
    enum = weights_enum(cfg)
    ratio = 256 / 224
    if enum is not None:
        t = enum.transforms()
        ratio = t.resize_size[0] / t.crop_size[0]
    return int(round(cfg.image_size * ratio))


def _read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    with fsspec.open(path, "rb") as fh:
        obj = torch.load(fh, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    # Places365 releases were saved from DataParallel: keys start with `module.`.
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone(cfg: BackboneConfig) -> nn.Module:
    """A ResNet with its classifier replaced by identity: images -> (N, feature_dim)."""
    if cfg.name not in RESNETS:
        raise ValueError(f"backbone {cfg.name!r} not supported; choose one of {RESNETS}")
    ctor = getattr(torchvision.models, cfg.name)
    if cfg.weights in WEIGHTS:
        enum = weights_enum(cfg)
        try:
            model = ctor(weights=enum)
        except Exception as e:  # offline machine, proxy, corrupt cache...
            raise WeightsUnavailable(
                f"ImageNet weights for {cfg.name} ({enum}) could not be loaded: {type(e).__name__}: {e}. "
                f"Put {enum.url.rsplit('/', 1)[-1]} under {torch.hub.get_dir()}/checkpoints on every node "
                f"(or set TORCH_HOME), or use featurize.backbone.weights=checkpoint "
                f"featurize.backbone.checkpoint=PATH; weights=none is for tests only."
            ) from e
    elif cfg.weights == "checkpoint":
        if not cfg.checkpoint:
            raise WeightsUnavailable("featurize.backbone.weights=checkpoint needs featurize.backbone.checkpoint=PATH")
        model = ctor(weights=None)
        try:
            state = _read_checkpoint(cfg.checkpoint)
        except Exception as e:
            raise WeightsUnavailable(f"cannot read backbone checkpoint {cfg.checkpoint}: {e}") from e
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}   # the classifier is not used
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise WeightsUnavailable(
                f"checkpoint {cfg.checkpoint} does not fit {cfg.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    elif cfg.weights == "none":
        with torch.random.fork_rng(devices=[]):   # the same random network in every actor and every run
            torch.manual_seed(0)
            model = ctor(weights=None)
    else:
        raise ValueError(f"unknown weights {cfg.weights!r}")
    model.fc = nn.Identity()
    return model.eval().requires_grad_(False)


def feature_dim(name: str) -> int:
    return 512 if name in ("resnet18", "resnet34") else 2048


def describe(cfg: BackboneConfig) -> str:
    what = {"imagenet": "ImageNet weights (IMAGENET1K_V1)", "imagenet_v2": "ImageNet weights (IMAGENET1K_V2)",
            "none": "NO pretrained weights (random init: tests/demo only)",
            "checkpoint": f"weights from {cfg.checkpoint}"}[cfg.weights]
    return f"{cfg.name} with {what}, {feature_dim(cfg.name)}-d features"


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
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255
        self.dim = feature_dim(cfg.name)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
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
                crops = ten_crops(x, self.cfg.image_size)                    # (10, n, 3, s, s)
                f = self._forward(crops.flatten(0, 1)).view(10, len(x), -1).mean(0)
            else:
                f = self._forward(x)
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
