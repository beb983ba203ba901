"""The training-side config: defaults < YAML file < `section.key=value` overrides.

Every job takes `--config FILE` and trailing `key=value` pairs; the typing rules are
`featurize.config`'s, so both halves of the system check their settings alike. The
defaults are the paper's settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from featurize.config import (GPU_FLAGS, ConfigError, DedupConfig, FeaturizeConfig, check_range, flatten, merge,
                              parse_overrides, to_dict, validate_featurize)

__all__ = ["AUDIO_MODELS", "BASELINES", "HEADS", "JOB_SECTIONS", "MODELS", "Config", "ConfigError", "ModelConfig", "flatten", "from_dict",
           "input_column", "load_config", "to_dict"]


@dataclass(frozen=True)
class ModelSpec:
    """What a model name (ctt-a|b|c|s|lstm) stands for (the code of each architecture is `ctt.models`)."""
    arch: str                        # visual: CTT over keyframes | audio: CTT over spectrograms | lstm
    head: str                        # its head unless model.head says otherwise ("": the LSTM's own)


MODELS = {"ctt-a": ModelSpec("visual", "linear"), "ctt-b": ModelSpec("visual", "fc"),
          "ctt-c": ModelSpec("visual", "maxout"), "ctt-s": ModelSpec("audio", "linear"), "lstm": ModelSpec("lstm", "")}
HEADS = ("linear", "fc", "maxout")   # CTT-MMC-A, -B, -C (`ctt.heads`)
AUDIO_MODELS = tuple(name for name, spec in MODELS.items() if spec.arch == "audio")
BASELINES = ("vllf", "av", "random", "probe")  # SVMs on the store's vllf / av vectors, uniform random scores,
                                                # and the linear probe on pooled store columns (`ctt.baselines`)
# The config sections each job reads: what it logs as params, and all it accepts overrides for.
JOB_SECTIONS = {"featurize": ("featurize", "tracking"), "train": ("model", "train", "resources", "tracking"),
                "baselines": ("baseline", "tracking"), "fuse": ("fusion", "tracking"),
                "predict": ("featurize",), "inspect_trailer": ("featurize",), "dedup": ("dedup", "tracking")}         # predict: runtime knobs; the features are made as the model's were


# What the linear probe (`ctt.probe`) can read: pooled keyframes, spectrogram statistics, both,
# or a low-level descriptor vector as it is.
PROBE_INPUTS = ("frames", "spectrograms", "both", "av", "vllf")


def input_column(model_name: str) -> str:
    """The feature-store column a model reads."""
    return "spectrograms" if model_name in AUDIO_MODELS else "frames"


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
    spectrogram: str = "magnitude"   # ctt-s input: magnitude (the paper's) | log (log1p of the magnitude before
                                     # the mean subtraction and batch norm; beyond the paper). Same store.
    standardize: bool = False        # keyframe models: z-score each feature dimension with train-set mean and
                                     # std before the CTT / LSTM (beyond the paper; the paper feeds raw features).
                                     # ctt-s normalises its spectrograms always (mean subtraction, batch norm)




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
    probe_input: str = "frames"      # --method probe reads: frames | spectrograms | both | av | vllf (beyond the paper)
    selection: str = "val"           # SVM grid point per genre chosen on: val (the paper's) | cv: k-fold
                                     # cross-validation (beyond the paper) over ...
    cv_data: str = "train"           # ... train | train+val (the refit is on train either way)
    folds: int = 5
    grid_scores: str = "decision"    # how grid points are ranked: decision (SVC.decision_function: AU(PRC)
                                     # needs only the ranking, and Platt scaling is monotonic) | probability
                                     # (libsvm's Platt scaling at every point, 5 internal fits each); the
                                     # chosen point is refitted with probability outputs either way


@dataclass
class FusionConfig:
    step: float = 0.05               # visual weight grid {1.0, 1.0 - step, ..., 0.0}
    per_genre: bool = False          # beyond the paper: one visual weight per genre, chosen on val ...
    shrink: float = 10.0             # ... and shrunk toward the global weight: (n w_g + shrink w) / (n + shrink)


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
    seeds: list = field(default_factory=list)   # [0, 1, 2]: one child run per seed under a parent run
                                     # (mean and std of every metric); empty: one run at `seed`
    lr_schedule: str = "none"        # none (the paper) | plateau | cosine (beyond the paper; ctt.training.learning_rate)
    lr_patience: int = 5             # plateau: epochs without a better val AU(PRC) before the rate is cut
    lr_factor: float = 0.5           # plateau: the cut
    lr_min: float = 0.01             # cosine: the last epoch's rate, as a share of train.lr
    calibration: str = "none"        # none (the paper) | temperature | platt: per-genre calibration of the
                                     # probabilities fitted on val (beyond the paper), kept with the model


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
    storage_path: str = ""           # Ray Train checkpoints: s3://bucket/prefix or a folder every node sees;
                                     # empty: $CTT_TRAIN_STORAGE (the cluster files set it), else
                                     # ~/ray_results on a one-node cluster
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
    dedup: DedupConfig = field(default_factory=DedupConfig)


def _read_yaml(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        raise ConfigError(f"config file {path}: YAML syntax error"
                          + (f" at line {where.line + 1}, column {where.column + 1}" if where else "")
                          + f": {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                sections: tuple[str, ...] | None = None) -> Config:
    """`sections`: the sections the calling job reads; an override of any other is an error
    (a config file may hold them all, as configs/demo.yaml does for every job)."""
    cfg = Config()
    if path:
        merge(cfg, _read_yaml(path))
    if overrides:
        tree = parse_overrides(overrides)
        unused = sorted(set(tree) - set(sections)) if sections is not None else []
        if unused:
            merge(Config(), {k: tree[k] for k in unused})           # an unknown key is named as such first
            key = next(o.split("=", 1)[0] for o in overrides if o.split(".", 1)[0].strip() == unused[0])
            raise ConfigError(f"{key}: this job does not read the {unused[0]} section "
                              f"(it reads {', '.join(sections) or 'no section'})")
        merge(cfg, tree)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    if cfg.model.name not in MODELS:
        raise ConfigError(f"model.name {cfg.model.name!r}: expected one of {', '.join(MODELS)}")
    if cfg.model.spectrogram not in ("magnitude", "log"):
        raise ConfigError(f"model.spectrogram={cfg.model.spectrogram!r}: expected magnitude or log")
    if cfg.model.head not in ("", *HEADS):
        raise ConfigError(f"model.head {cfg.model.head!r}: expected {', '.join(HEADS)} (or empty)")
    if min(cfg.model.f, cfg.model.n, cfg.model.parts, cfg.model.test_draws, cfg.model.max_steps) < 1:
        raise ConfigError("model.f, n, parts, test_draws and max_steps must be positive")
    if not 0 < cfg.fusion.step <= 1:
        raise ConfigError("fusion.step must be in (0, 1]")
    bad = [k for k in cfg.baseline.kernels if k not in ("linear", "rbf")]
    if bad or not cfg.baseline.kernels or not cfg.baseline.C:
        raise ConfigError(f"baseline.kernels must be linear and/or rbf (got {cfg.baseline.kernels}), baseline.C non-empty")
    check_range("model.", cfg.model, {"dropout": (0, 1, True)})
    check_range("train.", cfg.train, {"lr": (0, None, False), "weight_decay": (0, None, True),
                                      "batch_size": (1, None, True), "max_epochs": (1, None, True),
                                      "patience": (1, None, True)})
    check_range("resources.", cfg.resources, {"num_workers": (1, None, True), "cpus_per_worker": (0, None, False),
                                              "max_failures": (-1, None, True)})
    if cfg.baseline.selection not in ("val", "cv") or cfg.baseline.cv_data not in ("train", "train+val"):
        raise ConfigError("baseline.selection: expected val or cv; baseline.cv_data: train or train+val")
    if cfg.baseline.grid_scores not in ("decision", "probability"):
        raise ConfigError("baseline.grid_scores: expected decision or probability")
    if cfg.baseline.folds < 2:
        raise ConfigError(f"baseline.folds={cfg.baseline.folds}: must be >= 2")
    if cfg.baseline.probe_input not in PROBE_INPUTS:
        raise ConfigError(f"baseline.probe_input={cfg.baseline.probe_input!r}: expected {', '.join(PROBE_INPUTS)}")
    check_range("baseline.", cfg.baseline, {"C": (0, None, False), "gamma": (0, None, False),
                                            "cpus_per_task": (0, None, False)})
    validate_featurize(cfg.featurize)
    if cfg.resources.use_gpu not in GPU_FLAGS:
        raise ConfigError("resources.use_gpu: expected auto, true or false")
    if cfg.train.lr_schedule not in ("none", "plateau", "cosine"):
        raise ConfigError(f"train.lr_schedule={cfg.train.lr_schedule!r}: expected none, plateau or cosine")
    check_range("train.", cfg.train, {"lr_patience": (1, None, True), "lr_factor": (0, 1, False),
                                      "lr_min": (0, 1, True)})
    if cfg.train.calibration not in ("none", "temperature", "platt"):
        raise ConfigError(f"train.calibration={cfg.train.calibration!r}: expected none, temperature or platt")
    seeds = cfg.train.seeds
    if any(not isinstance(x, int) or isinstance(x, bool) for x in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"train.seeds={seeds!r}: expected distinct integers, e.g. [0, 1, 2]")
    if cfg.train.checkpoint_every < 1:
        raise ConfigError("train.checkpoint_every must be >= 1")
    if cfg.resources.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
        raise ConfigError("resources.placement_strategy: expected PACK, SPREAD, STRICT_PACK or STRICT_SPREAD")
    check_range("dedup.", cfg.dedup, {"dim": (1, None, True), "shot_similarity": (-1, 1, True),
                                      "neighbours": (1, None, True), "min_score": (0, 1, True),
                                      "min_shared": (1, None, True), "exact_limit": (0, None, True)})


def sections_of(cfg: Config, job: str) -> dict:
    """The part of the resolved config a job reads, as a dict (printed, logged as params)."""
    return {k: v for k, v in to_dict(cfg).items() if k in JOB_SECTIONS[job]}


def from_dict(d: dict) -> Config:
    """A logged resolved config (a run's `config/resolved_config.json`) -> a checked Config."""
    cfg = Config()
    merge(cfg, d)
    validate(cfg)
    return cfg
