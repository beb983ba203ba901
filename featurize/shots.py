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
from typing import Any, Callable

import numba
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


def hsv_histogram(rgb: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """Joint HSV histogram of an RGB image, normalised to sum 1: (hb * sb * vb,) float32."""
    hb, sb, vb = bins
    hist = np.bincount(hsv_bin(rgb, bins).ravel(), minlength=hb * sb * vb).astype(np.float32)
    return hist / max(hist.sum(), 1.0)


def yuv_to_rgb(yuv: np.ndarray, full_range: bool) -> np.ndarray:
    """uint8 (..., 3) Y'CbCr (BT.601, as swscale assumes by default) -> uint8 (..., 3) RGB."""
    x = yuv.astype(np.float32)
    y, cb, cr = x[..., 0], x[..., 1] - 128.0, x[..., 2] - 128.0
    if full_range:
        ys, cs = y, 1.0
    else:
        ys, cs = (y - 16.0) * (255.0 / 219.0), 255.0 / 224.0
    r = ys + 1.402 * cs * cr
    g = ys - (0.344136 * cs) * cb - (0.714136 * cs) * cr
    b = ys + 1.772 * cs * cb
    return np.clip(np.rint(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


YUV_BITS = 7      # per channel: a 2^21-entry table (2 MB, built in a fraction of a second) mostly stays
                  # in cache; histograms stay within a few percent of full 8-bit binning


@functools.lru_cache(maxsize=8)
def _yuv_bin_table(bins: tuple[int, int, int], full_range: bool) -> np.ndarray:
    """The HSV bin of every quantised (Y, Cb, Cr) cell, taken at the cell's centre: frames are
    binned straight from the decoder's planes, with no scaling or RGB conversion per frame."""
    q = 1 << YUV_BITS
    centres = (np.arange(q) << (8 - YUV_BITS)) + (1 << (8 - YUV_BITS)) // 2
    yuv = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3).astype(np.uint8)
    dtype = np.uint8 if int(np.prod(bins)) <= 256 else np.uint16
    return hsv_bin(yuv_to_rgb(yuv, full_range), bins).astype(dtype)


@numba.njit(cache=True, nogil=True)
def _count_bins(yuv: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """out[f] = the normalised HSV histogram of frame f, counted in one pass over its samples.

    yuv: (frames, 3, pixels) uint8 Y, Cb, Cr; table: the HSV bin of every (Y, Cb, Cr) cell,
    indexed by the code (Y >> s) << 2b | (Cb >> s) << b | (Cr >> s) with b = YUV_BITS and
    s = 8 - b (`_yuv_bin_table`); out: (frames, bins) float32, each row summing to 1.
    Equal to np.bincount of the looked-up codes (test_compiled_histograms_and_motion_equal_their_definitions).
    """
    shift, bits = 8 - YUV_BITS, YUV_BITS
    n, _, pixels = yuv.shape
    counts = np.zeros(out.shape[1], np.int64)
    for f in range(n):
        counts[:] = 0
        for i in range(pixels):
            code = ((np.int64(yuv[f, 0, i]) >> shift) << (2 * bits)) | ((np.int64(yuv[f, 1, i]) >> shift) << bits) \
                | (np.int64(yuv[f, 2, i]) >> shift)
            counts[table[code]] += 1
        total = np.float32(max(pixels, 1))
        for k in range(len(counts)):
            out[f, k] = np.float32(counts[k]) / total


def yuv_histograms(yuv: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4),
                   full_range: bool = False) -> np.ndarray:
    """(frames, 3, pixels) uint8 Y, Cb, Cr samples -> (frames, bins) normalised HSV histograms.

    One compiled pass per frame: each sample's quantised (Y, Cb, Cr) code indexes the bin
    table and is counted, with no per-pixel intermediate arrays."""
    yuv = np.ascontiguousarray(yuv, np.uint8)
    out = np.empty((len(yuv), int(np.prod(bins))), np.float32)
    _count_bins(yuv, _yuv_bin_table(tuple(bins), full_range), out)
    return out


def yuv_histogram(yuv: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4), full_range: bool = False) -> np.ndarray:
    """`hsv_histogram` of one frame given as (3, ...) Y, Cb, Cr samples."""
    return yuv_histograms(yuv.reshape(1, 3, -1), bins, full_range)[0]


def intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.minimum(a, b).sum())


def _smoothed(sims: np.ndarray, i: int, half: int) -> float:
    lo, hi = max(0, i - half), min(len(sims), i + half + 1)
    return float(sims[lo:hi].mean(dtype=np.float64))


def _smooth_range(sims: np.ndarray, start: int, stop: int, half: int) -> np.ndarray:
    """`_smoothed(sims, i, half)` for i in [start, stop), whole windows at once: each value
    depends only on its own window, so any split of the range gives the same numbers."""
    n, out = len(sims), np.empty(max(0, stop - start), np.float64)
    a, b = max(start, half), min(stop, n - half)
    if b > a:
        win = np.lib.stride_tricks.sliding_window_view(sims[a - half:b + half], 2 * half + 1)
        out[a - start:b - start] = win.mean(axis=1, dtype=np.float64)
    for i in [*range(start, min(a, stop)), *range(max(b, start), stop)]:
        out[i - start] = _smoothed(sims, i, half)
    return out


def _deep(sims: np.ndarray, smoothed: np.ndarray, start: int, stop: int, half: int, threshold: float) -> np.ndarray:
    """For k in [start, stop): could `_boundary_at` find a cut at k? Its last test, vectorised:
    the smoothed value or the lowest raw similarity within +-half below `threshold`."""
    if stop <= start:
        return np.zeros(0, bool)
    lo = max(0, start - half)
    pad = np.concatenate([np.full(half - (start - lo), np.inf, np.float32), sims[lo:stop + half]])
    pad = np.concatenate([pad, np.full(stop - start + 2 * half - len(pad), np.inf, np.float32)])
    low = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1).min(1)
    return (smoothed[start:stop] < threshold) | (low < threshold)


def _boundary_at(sims: np.ndarray, smoothed: np.ndarray, k: int, half: int, radius: int,
                 threshold: float) -> int | None:
    """The cut found at smoothed index k, as a similarity index i (cut between frame i and i+1).

    `smoothed[j]` is `_smoothed(sims, j, half)`, known for every j up to k + radius.
    k must be the minimum of the smoothed curve within +-radius (ties: lower raw similarity, then earlier),
    and the dip deep enough: its smoothed value (a gradual transition) or the lowest
    raw similarity near it (a hard cut) below `threshold`. The moving average spreads a
    one-frame dip over `smooth` frames, so the cut is placed at the raw minimum within
    +-half of k.
    """
    n = len(sims)
    sk = float(smoothed[k])
    key = (sk, float(sims[k]))       # a flat smoothed dip is decided by the raw similarity
    for j in range(max(0, k - radius), min(n, k + radius + 1)):
        if j != k:
            kj = (float(smoothed[j]), float(sims[j]))
            if kj < key or (kj == key and j < k):
                return None
    lo = max(0, k - half)
    i = lo + int(np.argmin(sims[lo:min(n, k + half + 1)]))
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
    half = smooth // 2
    smoothed = _smooth_range(sims, 0, len(sims), half)
    cuts = (_boundary_at(sims, smoothed, k, half, radius, threshold) for k in range(len(sims)))
    return sorted({i + 1 for i in cuts if i is not None})


def subsample(n: int, cap: int) -> np.ndarray:
    """Indices of at most `cap` of n items, spread uniformly over time (all when cap <= 0)."""
    if cap <= 0 or n <= cap:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cap)).astype(int))


def shots_from_boundaries(boundaries: list[int], n_frames: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering 0..n_frames."""
    edges = [0] + [b for b in boundaries if 0 < b < n_frames] + [n_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class CandidatePool:
    """Keyframe candidates for a whole trailer, for a detector that finds its shots after the
    decode pass: every `stride`-th frame is kept (from frame 0) (`make` turns it into what is kept), and
    once more than `cap` are held every other one is dropped and the stride doubles, so
    memory stays bounded while the candidates stay evenly spaced over the trailer."""

    def __init__(self, cap: int, stride: int = 1):
        self.cap, self.stride = cap, max(1, stride)
        self.items: list[tuple[int, float, Any]] = []

    def push(self, index: int, time: float, make: Callable[[], Any]) -> None:
        """Frame `index` (decode order, from 0) at `time` seconds; `make` runs only for kept frames."""
        if index % self.stride:
            return
        self.items.append((index, time, make()))
        if len(self.items) > self.cap:
            self.items = self.items[::2]
            self.stride *= 2


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
    last few frames, not yet past a possible cut; `keep` turns a chosen keyframe's
    payload into what is kept when its shot closes (a decoded frame into a model-size
    image). The keyframe is the kept candidate nearest the shot's centre: the exact
    central frame for shots up to `max_candidates` frames long, within half the spacing
    for longer ones.
    Per frame: one intersection, one smoothed value, one judgement (constant work).
    """
    smooth: int = 3
    radius: int = 4
    threshold: float = 0.75
    max_candidates: int = 32
    keep: Callable[[Any], Any] | None = None   # applied to a keyframe's payload when its shot closes
    keyframes: list[Keyframe] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=list)
    _prev_hist: np.ndarray | None = None
    _n: int = 0
    _sims: np.ndarray = field(default_factory=lambda: np.zeros(1024, np.float32))
    _smoothed: np.ndarray = field(default_factory=lambda: np.zeros(1024, np.float64))
    _n_sims: int = 0
    _n_smoothed: int = 0
    _decided: int = 0                     # similarity indices already judged
    _shot_start: int = 0
    _stride: int = 1
    _cands: list[tuple[int, float, Any]] = field(default_factory=list)
    _recent: list[tuple[int, float, Any]] = field(default_factory=list)

    @property
    def sims(self) -> np.ndarray:
        """Similarity of frame i and i + 1, for every pair seen so far."""
        return self._sims[:self._n_sims]

    @property
    def smoothed(self) -> np.ndarray:
        """The smoothed similarity curve the cuts are judged on (complete after `finish`)."""
        return self._smoothed[:self._n_smoothed]

    def _smooth_upto(self, n: int) -> None:
        if n > self._n_smoothed:
            self._smoothed[self._n_smoothed:n] = _smooth_range(self.sims, self._n_smoothed, n, self.smooth // 2)
            self._n_smoothed = n

    def push(self, hist: np.ndarray, time: float, payload: Any) -> None:
        self.push_many(hist[None], [time], [payload])

    def push_many(self, hists: np.ndarray, times: list[float], payloads: list[Any]) -> None:
        """Frames in decode order, (frames, bins) histograms. The similarities, smoothed
        values and the cheap test for a possible cut (`_deep`) are computed for all of them
        at once; frames are then taken one by one, exactly as single pushes would: each joins
        the recent frames, the oldest recent frame becomes a keyframe candidate if it falls
        on the shot's current stride, and every similarity index whose +-radius
        neighbourhood is now known is judged."""
        if len(hists) == 0:
            return
        both = hists if self._prev_hist is None else np.concatenate([self._prev_hist[None], hists])
        new = np.minimum(both[1:], both[:-1]).sum(1)
        while self._n_sims + len(new) > len(self._sims):
            self._sims = np.concatenate([self._sims, np.zeros_like(self._sims)])
            self._smoothed = np.concatenate([self._smoothed, np.zeros_like(self._smoothed)])
        self._sims[self._n_sims:self._n_sims + len(new)] = new
        self._n_sims += len(new)
        self._prev_hist = hists[-1]
        half = self.smooth // 2
        self._smooth_upto(self._n_sims - half)          # values whose whole window is known
        first = self._decided
        last = self._n_sims - self.radius - half        # judgements possible once this batch is in
        deep = _deep(self.sims, self._smoothed, first, max(first, last), half, self.threshold)
        # How many of the newest frames stay unthinned. After frame idx - 1, the judgements
        # still to come are at smoothed indices k >= idx - 1 - radius - half, and a cut found at
        # k lies at most `half` earlier (the raw minimum near the dip), so the next shot can
        # start no earlier than frame idx - radius - 2 * half. Keeping radius + 2 * half + 2
        # frames (back to idx - radius - 2 * half - 1) holds every frame that may open it.
        keep = self.radius + 2 * half + 2
        for time, payload in zip(times, payloads):
            idx = self._n
            self._n += 1
            # The newest frames stay unthinned: a cut among them is decided only radius + half
            # frames later, and they may open the next shot.
            self._recent.append((idx, time, payload))
            if len(self._recent) > keep:
                old = self._recent.pop(0)
                if (old[0] - self._shot_start) % self._stride == 0:
                    self._cands.append(old)
                    if len(self._cands) > self.max_candidates:
                        self._cands = self._cands[::2]
                        self._stride *= 2
            while self._decided + self.radius + half <= idx - 1:     # idx similarities are known now
                k = self._decided
                if deep[k - first]:
                    self._judge(k)
                else:
                    self._decided = k + 1

    def _judge(self, k: int) -> None:
        self._decided = k + 1
        i = _boundary_at(self.sims, self._smoothed, k, self.smooth // 2, self.radius, self.threshold)
        if i is not None and i + 1 > self._shot_start:
            self._close_shot(i + 1)

    def _close_shot(self, end: int) -> None:
        shot = (self._shot_start, end)
        mine = [c for c in self._cands + self._recent if c[0] < end]
        if mine:
            centre = (shot[0] + shot[1] - 1) / 2.0
            idx, time, payload = min(mine, key=lambda c: (abs(c[0] - centre), c[0]))
            self.keyframes.append(Keyframe(idx, time, shot, payload if self.keep is None else self.keep(payload)))
        if end < self._n:
            self.boundaries.append(end)
        self._recent = [c for c in self._recent if c[0] >= end]
        self._shot_start, self._stride, self._cands = end, 1, []

    def finish(self) -> list[Keyframe]:
        self._smooth_upto(self._n_sims)      # the last windows are cut short by the end, as offline
        while self._decided < self._n_sims:
            self._judge(self._decided)
        if self._n > self._shot_start:
            self._close_shot(self._n)
        return self.keyframes
