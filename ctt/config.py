"""Typed configuration: defaults < YAML file < `section.key=value` overrides.

Every job takes `--config FILE` and trailing `key=value` pairs. Unknown keys and
values of the wrong type are errors, so a typo never silently trains the wrong model.
The defaults are the paper's settings (SPEC section 2).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class BackboneConfig:
    name: str = "resnet152"          # any torchvision ResNet: resnet18/34/50/101/152
    weights: str = "imagenet"        # imagenet | none | checkpoint
    checkpoint: str = ""             # state_dict file (local or s3://) when weights=checkpoint
    image_size: int = 224            # centre crop after a short-side resize to 256/224 of it
    ten_crop: bool = False           # the paper's test phase: 4 corners + centre, and their flips, averaged
    batch_size: int = 64             # keyframes per forward pass
    channels_last: bool = True       # GPU only
    bf16: bool = True                # autocast on GPU only


@dataclass
class ShotConfig:
    thumb_height: int = 64           # frames are scaled in the decoder to this height for histograms
    hue_bins: int = 16
    sat_bins: int = 4
    val_bins: int = 4
    smooth: int = 3                  # moving-average window over the similarity curve (odd)
    radius: int = 4                  # a boundary is the minimum within +-radius frames
    threshold: float = 0.75          # ... and its smoothed similarity is below this
    max_candidates: int = 32         # keyframe candidates kept per open shot (bounded memory)


@dataclass
class FeaturizeConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    max_keyframes: int = 0           # cap per trailer, uniform subsample over time (0: no cap)
    trailers_per_batch: int = 4      # trailers handed to one embedder call / one output file
    decode_cpus: float = 1.0         # CPUs reserved by each decode task
    decode_threads: int = 0          # FFmpeg threads per decode task; 0: its reserved CPUs, rounded up
                                     # (one task per core then keeps every core busy without oversubscribing)
    embed_actors: int = 0            # 0: one per GPU, or max(1, CPUs // 2) on CPU-only clusters
    embed_cpus: float = 1.0          # CPUs per embedder actor on CPU-only clusters
    use_gpu: str = "auto"            # auto | true | false
    spectrograms_on: str = "auto"    # decode (CPU tasks, float16 to the actors) | actor (torch.stft again in
                                     # the embedder actors, raw audio shipped) | auto: decode. The decode task
                                     # computes the spectrograms for the AV descriptors in any case.


MODELS = ("ctt-a", "ctt-b", "ctt-c", "ctt-s", "lstm")


@dataclass
class ModelConfig:
    name: str = "ctt-c"              # ctt-a | ctt-b | ctt-c (keyframes) | ctt-s (spectrograms) | lstm
    n: int = 256                     # CTT filters
    f: int = 3                       # CTT receptive field in time steps (3, 5 or 7)
    hidden: int = 256                # FC / Maxout width; LSTM hidden units
    dropout: float = 0.5
    head: str = ""                   # "": the model's own (A linear, B fc, C maxout, S linear);
                                     # linear | fc | maxout: an option, e.g. a Maxout head on ctt-s
    parts: int = 11                  # ctt-s: p parts, one random spectrogram drawn from each per step
    test_draws: int = 10             # ctt-s: test probabilities averaged over this many draws
    max_steps: int = 120             # lstm: sequences cut (or zero-padded) to this many keyframes


@dataclass
class BaselineConfig:
    """One-vs-all SVMs on the low-level features (paper section 4.2), grid-searched on val."""
    C: list = field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0])
    kernels: list = field(default_factory=lambda: ["linear", "rbf"])
    gamma: list = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(1, 11)])
    cpus_per_task: float = 1.0       # one Ray task per grid point (all genres)
    seed: int = 0
    max_iter: int = 1_000_000        # libsvm iteration bound (-1: none). Not in the paper: a linear
                                     # kernel with C=1000 on overlapping classes may otherwise run for hours


@dataclass
class FusionConfig:
    step: float = 0.05               # visual weight grid {1.0, 1.0 - step, ..., 0.0}


@dataclass
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 20               # epochs without val micro AU(PRC) improvement
    seed: int = 0
    materialize: bool = True         # keep the (small) feature tables in the object store across epochs
    checkpoint_every: int = 1        # epochs between Ray Train reports + checkpoints (the last epoch always)
    cache_shard: bool = True         # each worker keeps its train shard in memory after epoch 0 and
                                     # reshuffles it locally (false: stream it from Ray Data every epoch)


@dataclass
class ResourceConfig:
    num_workers: int = 2             # Ray Train workers (DDP)
    use_gpu: str = "auto"            # auto | true | false
    cpus_per_worker: float = 0.5     # < 1 leaves CPU to Ray Data on small machines
    placement_strategy: str = "PACK" # PACK | SPREAD (one worker per node where possible) | STRICT_SPREAD
    max_failures: int = 2            # worker-group restarts from the last checkpoint


@dataclass
class TrackingConfig:
    experiment: str = "ctt-mmc"
    run_name: str = ""
    storage_path: str = ""           # Ray Train checkpoints; default ~/ray_results
    register_as: str = ""            # also register the trained model in the MLflow Model Registry
    register_alias: str = ""         # ... and point this alias (e.g. champion) at the new version


@dataclass
class Config:
    featurize: FeaturizeConfig = field(default_factory=FeaturizeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    resources: ResourceConfig = field(default_factory=ResourceConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)


class ConfigError(ValueError):
    pass


def _coerce(value: Any, typ: Any, key: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):            # YAML 1.1 reads `1e-4` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is list:
        if isinstance(value, (list, tuple)):
            return list(value)
    elif typ is str:
        if value is None:
            return ""
        if isinstance(value, (str, int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
    raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")


def _merge(obj: Any, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(f"{prefix}{k}" for k in hints)
            raise ConfigError(f"unknown config key {name!r} (known: {known})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: expected a mapping, got {value!r}")
            _merge(current, value, f"{name}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], name))


def parse_overrides(pairs: list[str]) -> dict:
    """['train.lr=1e-4', 'model.f=5'] -> nested dict, values parsed as YAML scalars."""
    tree: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not key=value")
        key, raw = pair.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = tree
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return tree


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    cfg = Config()
    if path:
        text = Path(path).read_text()
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        _merge(cfg, data)
    if overrides:
        _merge(cfg, parse_overrides(overrides))
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    if cfg.model.name not in MODELS:
        raise ConfigError(f"model.name {cfg.model.name!r}: expected one of {', '.join(MODELS)}")
    if cfg.model.head not in ("", "linear", "fc", "maxout"):
        raise ConfigError(f"model.head {cfg.model.head!r}: expected linear, fc or maxout (or empty)")
    if min(cfg.model.f, cfg.model.n, cfg.model.parts, cfg.model.test_draws, cfg.model.max_steps) < 1:
        raise ConfigError("model.f, n, parts, test_draws and max_steps must be positive")
    if not 0 < cfg.fusion.step <= 1:
        raise ConfigError("fusion.step must be in (0, 1]")
    bad = [k for k in cfg.baseline.kernels if k not in ("linear", "rbf")]
    if bad or not cfg.baseline.kernels or not cfg.baseline.C:
        raise ConfigError(f"baseline.kernels must be linear and/or rbf (got {cfg.baseline.kernels}), baseline.C non-empty")
    if cfg.featurize.backbone.weights not in ("imagenet", "none", "checkpoint"):
        raise ConfigError("featurize.backbone.weights: expected imagenet, none or checkpoint")
    for key in ("featurize.use_gpu", "resources.use_gpu"):
        sec, name = key.split(".")
        if getattr(getattr(cfg, sec), name) not in ("auto", "true", "false"):
            raise ConfigError(f"{key}: expected auto, true or false")
    if cfg.train.checkpoint_every < 1:
        raise ConfigError("train.checkpoint_every must be >= 1")
    if cfg.resources.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
        raise ConfigError("resources.placement_strategy: expected PACK, SPREAD, STRICT_PACK or STRICT_SPREAD")
    if cfg.featurize.spectrograms_on not in ("auto", "decode", "actor"):
        raise ConfigError("featurize.spectrograms_on: expected auto, decode or actor")
    if cfg.featurize.shots.smooth % 2 == 0:
        raise ConfigError("featurize.shots.smooth must be odd")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1e-3}} -> {'train.lr': 1e-3}: the form logged as MLflow params."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def from_dict(d: dict) -> Config:
    cfg = Config()
    _merge(cfg, d)
    return cfg
