"""Shot boundaries from HSV colour-histogram intersection, and one keyframe per shot.

    frames -> HSV joint histogram (h x s x v bins) -> similarity s_i = sum(min(H_i, H_i+1))
           -> moving average over `smooth` values -> boundary where the smoothed curve is
              the minimum of its +-radius neighbourhood and the dip is below `threshold`,
              placed at the lowest raw similarity next to it
           -> keyframe = central frame of each shot

`ShotTracker` does this online while a video decodes, holding only a bounded set of
keyframe candidates per open shot; `shot_boundaries` is the same rule over a whole
similarity curve. Both call `_boundary_at`, so they agree exactly.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (..., 3) RGB -> H in [0, 1), S in [0, 1], V in [0, 1] (float32)."""
    x = rgb.astype(np.float32) * (1.0 / 255.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    maxc = x.max(-1)
    minc = x.min(-1)
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.maximum(maxc, 1e-12), 0.0)
    safe = np.maximum(delta, 1e-12)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return h.astype(np.float32), s.astype(np.float32), maxc


def hsv_bin(rgb: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """The joint HSV bin of every pixel: uint8 (..., 3) -> int (...)."""
    hb, sb, vb = bins
    h, s, v = rgb_to_hsv(rgb)
    hi = np.minimum((h * hb).astype(np.int32), hb - 1)
    si = np.minimum((s * sb).astype(np.int32), sb - 1)
    vi = np.minimum((v * vb).astype(np.int32), vb - 1)
    return (hi * sb + si) * vb + vi


@functools.lru_cache(maxsize=4)
def _bin_table(bins: tuple[int, int, int]) -> np.ndarray:
    """hsv_bin of all 2^24 RGB colours (33 MB, built once per process in about a second):
    a frame's histogram is then one gather and one bincount."""
    table = np.empty(1 << 24, np.uint16)
    gb = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), -1).reshape(-1, 2).astype(np.uint8)
    rgb = np.empty((65536, 3), np.uint8)
    rgb[:, 1:] = gb
    for r in range(256):
        rgb[:, 0] = r
        table[r << 16:(r + 1) << 16] = hsv_bin(rgb, bins)
    return table


def hsv_histogram(rgb: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """Joint HSV histogram of an RGB image, normalised to sum 1: (hb * sb * vb,) float32."""
    hb, sb, vb = bins
    x = rgb.reshape(-1, 3).astype(np.uint32)
    idx = _bin_table(tuple(bins))[(x[:, 0] << 16) | (x[:, 1] << 8) | x[:, 2]]
    hist = np.bincount(idx, minlength=hb * sb * vb).astype(np.float32)
    return hist / max(hist.sum(), 1.0)


def intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.minimum(a, b).sum())


def _smoothed(sims: np.ndarray, i: int, half: int) -> float:
    lo, hi = max(0, i - half), min(len(sims), i + half + 1)
    return float(sims[lo:hi].mean())


def _boundary_at(sims: np.ndarray, k: int, half: int, radius: int, threshold: float) -> int | None:
    """The cut found at smoothed index k, as a similarity index i (cut between frame i and i+1).

    k must be the minimum of the smoothed curve within +-radius (ties: lower raw similarity, then earlier),
    and the dip deep enough: its smoothed value (a gradual transition) or the lowest
    raw similarity near it (a hard cut) below `threshold`. The moving average spreads a
    one-frame dip over `smooth` frames, so the cut is placed at the raw minimum within
    +-half of k.
    """
    sk = _smoothed(sims, k, half)
    key = (sk, float(sims[k]))       # a flat smoothed dip is decided by the raw similarity
    for j in range(max(0, k - radius), min(len(sims), k + radius + 1)):
        if j != k:
            kj = (_smoothed(sims, j, half), float(sims[j]))
            if kj < key or (kj == key and j < k):
                return None
    lo = max(0, k - half)
    i = lo + int(np.argmin(sims[lo:min(len(sims), k + half + 1)]))
    if sk < threshold or sims[i] < threshold:
        return i
    return None


def shot_boundaries(sims: np.ndarray, smooth: int = 3, radius: int = 4,
                    threshold: float = 0.75) -> list[int]:
    """Frame indices where a new shot starts (cut between frame c-1 and c).

    Args:
        sims: (n_frames - 1,) similarity of frame i and i+1.
    """
    sims = np.asarray(sims, np.float32)
    cuts = (_boundary_at(sims, k, smooth // 2, radius, threshold) for k in range(len(sims)))
    return sorted({i + 1 for i in cuts if i is not None})


def shots_from_boundaries(boundaries: list[int], n_frames: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering 0..n_frames."""
    edges = [0] + [b for b in boundaries if 0 < b < n_frames] + [n_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@dataclass
class Keyframe:
    index: int          # frame number in decode order
    time: float         # seconds
    shot: tuple[int, int]
    payload: Any        # whatever the caller attached (a decoded frame)


@dataclass
class ShotTracker:
    """Online shot detection over a stream of (histogram, payload) frames.

    Memory is bounded: an open shot keeps at most `max_candidates` payloads, evenly
    spaced (once full, every other one is dropped and the spacing doubles), plus the
    last few frames, not yet past a possible cut. The keyframe is the kept candidate
    nearest the shot's centre: the exact central frame for shots up to
    `max_candidates` frames long, within half the spacing for longer ones.
    """
    smooth: int = 3
    radius: int = 4
    threshold: float = 0.75
    max_candidates: int = 32
    sims: list[float] = field(default_factory=list)
    keyframes: list[Keyframe] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=list)
    _prev_hist: np.ndarray | None = None
    _n: int = 0
    _decided: int = 0                     # similarity indices already judged
    _shot_start: int = 0
    _stride: int = 1
    _cands: list[tuple[int, float, Any]] = field(default_factory=list)
    _recent: list[tuple[int, float, Any]] = field(default_factory=list)

    def push(self, hist: np.ndarray, time: float, payload: Any) -> None:
        if self._prev_hist is not None:
            self.sims.append(intersection(self._prev_hist, hist))
        self._prev_hist = hist
        idx = self._n
        self._n += 1
        # The newest frames stay unthinned: a cut among them is decided only radius + half
        # frames later, and they may open the next shot.
        self._recent.append((idx, time, payload))
        if len(self._recent) > self.radius + 2 * (self.smooth // 2) + 2:
            old = self._recent.pop(0)
            if (old[0] - self._shot_start) % self._stride == 0:
                self._cands.append(old)
                if len(self._cands) > self.max_candidates:
                    self._cands = self._cands[::2]
                    self._stride *= 2
        half = self.smooth // 2
        arr = None
        while self._decided + self.radius + half <= len(self.sims) - 1:
            arr = np.asarray(self.sims, np.float32) if arr is None else arr
            self._judge(arr, self._decided)

    def _judge(self, sims: np.ndarray, k: int) -> None:
        self._decided = k + 1
        i = _boundary_at(sims, k, self.smooth // 2, self.radius, self.threshold)
        if i is not None and i + 1 > self._shot_start:
            self._close_shot(i + 1)

    def _close_shot(self, end: int) -> None:
        shot = (self._shot_start, end)
        mine = [c for c in self._cands + self._recent if c[0] < end]
        if mine:
            centre = (shot[0] + shot[1] - 1) / 2.0
            idx, time, payload = min(mine, key=lambda c: (abs(c[0] - centre), c[0]))
            self.keyframes.append(Keyframe(idx, time, shot, payload))
        if end < self._n:
            self.boundaries.append(end)
        self._recent = [c for c in self._recent if c[0] >= end]
        self._shot_start, self._stride, self._cands = end, 1, []

    def finish(self) -> list[Keyframe]:
        sims = np.asarray(self.sims, np.float32)
        while self._decided < len(sims):
            self._judge(sims, self._decided)
        if self._n > self._shot_start:
            self._close_shot(self._n)
        return self.keyframes
