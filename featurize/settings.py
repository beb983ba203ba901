"""What a feature store was made with, and how to make more of the same.

`to_settings(cfg)` is what `STORE/_featurizer.json` records: every value that changes
the features (a store refuses rows made with other values). `from_settings(...)` is its
inverse: the `FeaturizeConfig` that featurizes new trailers as a trained model's store
was, with the runtime knobs (batch sizes, actors, devices) taken from `base`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from featurize import audio, backbone, lowlevel, shot_detectors
from featurize.backbone_families import family_of
from featurize.config import FeaturizeConfig, merge

# Backbone fields that change speed, not features: left out of the recorded settings.
RUNTIME_BACKBONE_FIELDS = ("batch_size", "channels_last")


class NotReproducible(ValueError):
    """The store's features cannot be recomputed by this featurizer (e.g. an imported release)."""


def shot_settings(cfg: FeaturizeConfig) -> dict[str, Any]:
    """The shot fields the detector declares (the paper's HSV stores record only the rule's own,
    so they keep the settings they were made with)."""
    fields = shot_detectors.get(cfg.shots.detector).settings_fields
    return {k: v for k, v in dataclasses.asdict(cfg.shots).items() if k in fields}


def to_settings(cfg: FeaturizeConfig) -> dict[str, Any]:
    return {
        "backbone": dataclasses.asdict(cfg.backbone) | {k: None for k in RUNTIME_BACKBONE_FIELDS},
        "feature_dim": backbone.feature_dim(cfg.backbone),
        "backbone_weights": backbone.WEIGHTS.get(cfg.backbone.weights, cfg.backbone.weights),  # which enum ran
        "resize": backbone.resize_short(cfg.backbone),
        **({"preprocess": dataclasses.asdict(backbone.preprocess(cfg.backbone))}
           if family_of(cfg.backbone.name)[0].records_preprocess else {}),
        "shots": shot_settings(cfg),
        "max_keyframes": cfg.max_keyframes,
        "audio": {"sample_rate": audio.SAMPLE_RATE, "window_s": audio.WINDOW_S, "n_fft": audio.N_FFT,
                  "hop": audio.HOP, "shape": [audio.FRAMES, audio.BINS], "dtype": "float16"},
        "vllf_names": list(lowlevel.VLLF_NAMES),
        "av_names": list(lowlevel.AV_NAMES) if cfg.av else [],       # []: featurize.av=false
        "av_audio": {"stft": "spectrograms", "n_mels": lowlevel.N_MELS, "zcr_frame": lowlevel.ZCR_FRAME},
    }


def from_settings(recorded: dict[str, Any], base: FeaturizeConfig | None = None) -> FeaturizeConfig:
    """`_featurizer.json` (or its `settings`) -> the config that reproduces it."""
    s = recorded.get("settings", recorded)
    if "shots" not in s or "name" not in s.get("backbone", {}) or s["backbone"].get("weights") == "lmtd9-release":
        raise NotReproducible("this model was trained on features that cannot be recomputed here "
                              f"(featurizer {s.get('source') or s.get('backbone')}); "
                              "train on a store written by jobs/featurize.py")
    cfg = base or FeaturizeConfig()
    merge(cfg.backbone, {k: v for k, v in s["backbone"].items() if v is not None})
    cfg.shots = type(cfg.shots)()               # fields a store does not record keep their defaults (hsv) ...
    if s["shots"].get("detector", "hsv") in ("hsv", "auto") and "black_gap" not in s["shots"]:
        cfg.shots.black_gap = 0                 # ... but a store made before fades were merged did not merge them
    merge(cfg.shots, s["shots"])
    cfg.max_keyframes = int(s.get("max_keyframes", 0))
    cfg.av = bool(s.get("av_names", True))
    return cfg
