"""Shot detectors by the name `featurize.shots.detector` takes. Adding one is a file in this
folder (a `base.ShotDetector`) and a line in `DETECTORS`."""
from __future__ import annotations

from featurize.shot_detectors import hsv, transnetv2
from featurize.shot_detectors.base import DetectorUnavailable, ShotDetector, TransitionModel

DETECTORS: dict[str, ShotDetector] = {
    hsv.DETECTOR.name: hsv.DETECTOR,
    transnetv2.DETECTOR.name: transnetv2.DETECTOR,
}

AUTO = "auto"          # transnetv2 where the embedder actors have GPUs and the package is installed, else hsv


def names() -> tuple[str, ...]:
    """What `shots.detector` accepts."""
    return (*DETECTORS, AUTO)


__all__ = ["AUTO", "DETECTORS", "names", "DetectorUnavailable", "ShotDetector", "TransitionModel", "get",
           "require", "resolve"]


def resolve(name: str, gpu: bool) -> str:
    """The detector `name` stands for on a cluster whose embedder actors do (`gpu`) or do not
    have a GPU: `auto` takes the learned detector only where it runs at decode speed."""
    if name != AUTO:
        return name
    return "transnetv2" if gpu and not DETECTORS["transnetv2"].available() else "hsv"


def get(name: str) -> ShotDetector:
    if name == AUTO:
        raise ValueError("shots.detector=auto is resolved per cluster first (shot_detectors.resolve)")
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown shot detector {name!r}; expected {' or '.join(names())}") from None


def require(name: str) -> ShotDetector:
    """The detector, or DetectorUnavailable (with what to install) where it cannot run."""
    detector = get(name)
    missing = detector.available()
    if missing:
        raise DetectorUnavailable(missing)
    return detector
