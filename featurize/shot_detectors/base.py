"""What a shot detector declares, so the decode pass, the embedder actors, the store's
settings and the served model's requirements treat every detector alike.

Two kinds run in the featurizer:
  - online (`frame_size` None): the rule runs inside the decode pass on the frames' colour
    samples and picks the keyframes itself (the paper's HSV rule);
  - learned (`frame_size` set): the decode pass keeps every frame at that size and evenly
    spaced keyframe candidates; the embedder actor then runs the detector's model (on its
    GPU where there is one) for a per-frame transition probability, a new shot starts after
    each run above `threshold`, and the candidate nearest each shot's centre is its keyframe.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

import numpy as np

from featurize.shots import ShotRule

if TYPE_CHECKING:                       # the config imports the registry to check names
    from featurize.config import ShotConfig

# The HSV rule's settings (`ShotConfig`): every detector records them, since the decode pass
# always runs the rule for its similarity curve and the motion meter.
HSV_FIELDS = ("thumb_height", "hue_bins", "sat_bins", "val_bins",
              *(f.name for f in dataclasses.fields(ShotRule)), "max_candidates")


class DetectorUnavailable(RuntimeError):
    """The configured shot detector cannot run in this environment."""


class TransitionModel(Protocol):
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(n, h, w, 3) uint8 RGB frames at the detector's `frame_size` -> (n,) float32 in [0, 1]."""


class ShotDetector:
    """A detector's declaration; subclass it in one file of this folder and add it to the
    registry (`featurize.shot_detectors.DETECTORS`). Heavy imports belong inside `load`, so
    that checking a config's detector name stays cheap."""

    name: str = ""
    settings_fields: tuple[str, ...] = HSV_FIELDS     # `ShotConfig` fields a store records when it made the store
    frame_size: tuple[int, int] | None = None         # (height, width) of the RGB frames a learned detector reads
    requirement: str = ""                             # the pip package it needs beyond the core ("": none)

    @property
    def online(self) -> bool:
        return self.frame_size is None

    def available(self) -> str:
        """"" when it can run here, else what to install."""
        return ""

    def threshold(self, shots: ShotConfig) -> float:
        """A frame is part of a transition above this probability (learned detectors)."""
        raise NotImplementedError(f"{self.name} is not a learned detector")

    def load(self, device: str) -> TransitionModel:
        """The model, once per process and device (learned detectors)."""
        raise NotImplementedError(f"{self.name} is not a learned detector")
