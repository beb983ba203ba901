"""The paper's rule (the default): HSV colour-histogram intersection of consecutive frames,
found online in the decode pass (`featurize.shots.ShotTracker`)."""
from __future__ import annotations

from featurize.shot_detectors.base import ShotDetector


class HSVRule(ShotDetector):
    name = "hsv"


DETECTOR = HSVRule()
