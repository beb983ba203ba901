"""Typed configuration: defaults < YAML file < `section.key=value` overrides, and the
featurizer's own sections.

The rules live here, at the bottom of the package stack, so the featurizer's settings
and the training config (`ctt.config`) are checked the same way: unknown keys and
values of the wrong type are errors, so a typo never silently trains the wrong model.
The defaults are the paper's settings.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from featurize.shot_detectors import names as detector_names


class ConfigError(ValueError):
    pass


@dataclass
class BackboneConfig:
    name: str = "resnet152"          # any torchvision classification model (the paper: resnet152); beyond the
                                     # paper, timm:<name> or open_clip:<arch>/<pretrained> (`backbones` extra)
    weights: str = "imagenet"        # imagenet (IMAGENET1K_V1, the paper's) | imagenet_v2 (torchvision's newer
                                     # recipe, resize 232) | pretrained (timm / open_clip: their own) | none |
                                     # checkpoint
    checkpoint: str = ""             # state_dict file (local or s3://) when weights=checkpoint
    image_size: int = 224            # torchvision: centre crop after a short-side resize to 256/224 of it (the
                                     # weights' own ratio); timm and open_clip use their models' own sizes
    ten_crop: bool = False           # the paper's test phase: 4 corners + centre, and their flips, averaged
    batch_size: int = 64             # keyframes per forward pass
    channels_last: bool = True       # GPU only
    bf16: bool = True                # autocast on GPU only


@dataclass
class ShotConfig:
    detector: str = "hsv"            # hsv: colour-histogram comparisons (the paper's rule, made robust to
                                     # flashes, gradual transitions and jump cuts), online in the decode pass |
                                     # auto: transnetv2 where the embedder actors have GPUs and the package is
                                     # installed, else hsv |
                                     # transnetv2 (beyond the paper; the `transnet` extra): a network trained
                                     # on real footage for cuts and gradual transitions, run by the embedder
                                     # actors (on their GPU); the hsv settings below then only draw the
                                     # similarity curve (`featurize.shot_detectors` lists them all)
    transnet_threshold: float = 0.5  # a frame is part of a transition above this probability
    candidates: int = 256            # transnetv2: keyframe candidates a trailer keeps while it decodes (evenly
                                     # spaced; the spacing doubles when full), one per shot chosen later
    thumb_height: int = 64           # frames are sampled on a grid of about this many rows for histograms
    hue_bins: int = 16
    sat_bins: int = 4
    val_bins: int = 4
    # The boundary rule (`featurize.shots.ShotRule`); a change is 1 - histogram intersection
    cut_ratio: float = 3.0           # a cut: the frame change is this many times its neighbours' mean ...
    min_change: float = 0.15         # ... and at least this
    hard_change: float = 0.6         # a frame change at least this is a cut whatever its context
    context: int = 3                 # frames either side whose changes a cut is compared with
    flash_frames: int = 4            # a bright excursion this short that returns to the same shot is no cut
    spans: list = field(default_factory=lambda: [4, 8, 12])   # gradual transitions: frames compared this
                                     # far before and after (each span a scale: 2 x 12 frames covers 1 s)
    gradual_ratio: float = 2.0       # ... the change across is this many times the change either side ...
    gradual_change: float = 0.35     # ... and at least this
    region_grid: int = 3             # jump cuts: histograms of a grid x grid split of the frame (1: off)
    region_ratio: float = 2.5        # ... a cut when their mean change is this many times its neighbours' ...
    region_change: float = 0.25      # ... and at least this
    min_gap: int = 4                 # boundaries closer than this many frames are one
    black_gap: int = 24              # a fade through black is one boundary: a shot this many frames or shorter ...
    black_share: float = 0.5         # ... whose frames have on average this share of black samples, its
                                     # darkest frame all but black, joins the next shot (black_gap 0: off)
    max_candidates: int = 32         # keyframe candidates held for the stretch not yet decided (bounded memory)


@dataclass
class DedupConfig:
    """The near-duplicate finder's settings (`featurize.dedup`, `jobs/dedup.py`)."""
    dim: int = 64                    # signature dimensions per shot (a fixed random projection of the features)
    shot_similarity: float = 0.95    # cosine (centred signatures) at which two shots are the same shot
    neighbours: int = 10             # nearest shots looked up per shot
    min_score: float = 0.5           # a pair is a near-duplicate at this share of shots matched
    min_shared: int = 3              # ... and at least this many shots (two dark or plain shots are a look-alike)
    exact_limit: int = 50_000        # shots up to which the search is exact; above, an HNSW graph
    seed: int = 0                    # of the projection
    top_pairs: int = 4               # pairs drawn in the run's contact sheet


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
                                     # the embedder actors, raw audio shipped) | auto: decode, as measured by
                                     # `benchmark.py --suite gpu` (H200, 16 CPUs: 0.99x on the actors; the
                                     # job is decode-bound, and the decode task needs the spectrograms for
                                     # the AV descriptors in any case)
    av: bool = True                  # the AV baseline's audio descriptors (paper 4.2) in the `av` column;
                                     # false: `av` is left empty (about 30 ms less per minute of audio);
                                     # `vllf` and the spectrograms are always there
    max_failed_fraction: float = 0.2 # the job fails (exit 1) when a larger share of the trailers it tried
                                     # failed: more than one in five points at something systematic (a
                                     # missing codec, an unreadable bucket), not at a few bad files
    qa_samples: int = 3              # trailers drawn again (contact sheet, shot curve) into the featurize
                                     # MLflow run beside the store's histograms; 0: histograms only


GPU_FLAGS = ("auto", "true", "false")


def use_gpu(flag: str, gpus_in_cluster: float) -> bool:
    """`auto` means: when the cluster has a GPU."""
    return gpus_in_cluster > 0 if flag == "auto" else flag == "true"


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


def merge(obj: Any, values: dict, prefix: str = "") -> None:
    """Set `values` (a nested dict) on the dataclass `obj`, checking every key and type."""
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
            merge(current, value, f"{name}.")
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


def check_range(prefix: str, obj: Any, rules: dict[str, tuple[float | None, float | None, bool]]) -> None:
    """name -> (low, high, low inclusive): each value must lie in [low, high] (or (low, high])."""
    for name, (low, high, inclusive) in rules.items():
        v = getattr(obj, name)
        values = v if isinstance(v, list) else [v]
        for x in values:
            if (low is not None and (x < low if inclusive else x <= low)) or (high is not None and x > high):
                bound = (f"{'>=' if inclusive else '>'} {low}" if high is None else
                         f"in {'[' if inclusive else '('}{low}, {high}]")
                raise ConfigError(f"{prefix}{name}={v!r}: must be {bound}")


def validate_featurize(cfg: FeaturizeConfig, prefix: str = "featurize.") -> None:
    check_range(prefix, cfg, {"max_keyframes": (0, None, True), "trailers_per_batch": (1, None, True),
                              "decode_cpus": (0, None, False), "decode_threads": (0, None, True),
                              "embed_actors": (0, None, True), "embed_cpus": (0, None, False),
                              "max_failed_fraction": (0, 1, True), "qa_samples": (0, None, True)})
    check_range(prefix + "backbone.", cfg.backbone, {"image_size": (32, None, True), "batch_size": (1, None, True)})
    check_range(prefix + "shots.", cfg.shots, {"thumb_height": (8, None, True), "hue_bins": (1, None, True),
                                               "sat_bins": (1, None, True), "val_bins": (1, None, True),
                                               "cut_ratio": (0, None, True), "min_change": (0, 1, True),
                                               "hard_change": (0, 1, False), "context": (1, None, True),
                                               "flash_frames": (0, None, True), "gradual_ratio": (1, None, True),
                                               "gradual_change": (0, 1, False), "region_grid": (1, 8, True),
                                               "region_ratio": (1, None, True), "region_change": (0, 1, False),
                                               "min_gap": (1, None, True), "max_candidates": (2, None, True),
                                               "black_gap": (0, None, True), "black_share": (0, 1, True),
                                               "transnet_threshold": (0, 1, False), "candidates": (2, None, True)})
    if cfg.shots.detector not in detector_names():
        raise ConfigError(f"{prefix}shots.detector: expected {' or '.join(detector_names())}")
    if cfg.backbone.weights not in ("imagenet", "imagenet_v2", "pretrained", "none", "checkpoint"):
        raise ConfigError(f"{prefix}backbone.weights: expected imagenet, imagenet_v2, pretrained (timm/open_clip), "
                          "none or checkpoint")
    if cfg.use_gpu not in GPU_FLAGS:
        raise ConfigError(f"{prefix}use_gpu: expected auto, true or false")
    if cfg.spectrograms_on not in ("auto", "decode", "actor"):
        raise ConfigError(f"{prefix}spectrograms_on: expected auto, decode or actor")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in cfg.shots.spans):
        raise ConfigError(f"{prefix}shots.spans: expected a list of whole numbers of frames >= 2, "
                          f"got {cfg.shots.spans!r}")


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
