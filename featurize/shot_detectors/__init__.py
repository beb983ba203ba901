"""Shot detectors by the name `featurize.shots.detector` takes. Adding one is a file in this
folder (a `base.ShotDetector`) and a line in `DETECTORS`."""
from __future__ import annotations

from featurize.shot_detectors import hsv, transnetv2
from featurize.shot_detectors.base import DetectorUnavailable, ShotDetector, TransitionModel

DETECTORS: dict[str, ShotDetector] = {
    hsv.DETECTOR.name: hsv.DETECTOR,
    transnetv2.DETECTOR.name: transnetv2.DETECTOR,
}

__all__ = ["DETECTORS", "DetectorUnavailable", "ShotDetector", "TransitionModel", "get", "require"]


def get(name: str) -> ShotDetector:
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown shot detector {name!r}; expected {' or '.join(DETECTORS)}") from None


def require(name: str) -> ShotDetector:
    """The detector, or DetectorUnavailable (with what to install) where it cannot run."""
    detector = get(name)
    missing = detector.available()
    if missing:
        raise DetectorUnavailable(missing)
    return detector
