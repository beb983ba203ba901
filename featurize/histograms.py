"""Colour histograms of frames: the joint HSV histogram the shot rule compares (Wehrmann &
Barros 2017, section 3.1), counted straight from the decoder's Y, Cb, Cr planes through a
bin table, for the whole frame or for each region of a grid."""
from __future__ import annotations

import functools
import math

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


ACHROMATIC = 0.1   # below this saturation or value a pixel's hue is noise (a dark or grey pixel's
                   # chroma is a few code values): it counts in hue bin 0, so a fade or a dark
                   # shot does not scatter over the hue bins from frame to frame


def hsv_bin(rgb: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4)) -> np.ndarray:
    """The joint HSV bin of every pixel: uint8 (..., 3) -> int (...)."""
    hb, sb, vb = bins
    h, s, v = rgb_to_hsv(rgb)
    h = np.where((s < ACHROMATIC) | (v < ACHROMATIC), 0.0, h)
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
def _count_bins(yuv: np.ndarray, table: np.ndarray, region: np.ndarray, out: np.ndarray) -> None:
    """out[f, r] = the normalised HSV histogram of region r of frame f, counted in one pass
    over its samples.

    yuv: (frames, 3, pixels) uint8 Y, Cb, Cr; table: the HSV bin of every (Y, Cb, Cr) cell,
    indexed by the code (Y >> s) << 2b | (Cb >> s) << b | (Cr >> s) with b = YUV_BITS and
    s = 8 - b (`_yuv_bin_table`); region: (pixels,) the region of each sample; out:
    (frames, regions, bins) float32, each row summing to 1 (0 for an empty region).
    Equal to np.bincount of the looked-up codes (test_compiled_histograms_and_motion_equal_their_definitions).
    """
    shift, bits = 8 - YUV_BITS, YUV_BITS
    n, _, pixels = yuv.shape
    regions, nbins = out.shape[1], out.shape[2]
    counts = np.zeros((regions, nbins), np.int64)
    sizes = np.zeros(regions, np.int64)
    for i in range(pixels):
        sizes[region[i]] += 1
    for f in range(n):
        counts[:] = 0
        for i in range(pixels):
            code = ((np.int64(yuv[f, 0, i]) >> shift) << (2 * bits)) | ((np.int64(yuv[f, 1, i]) >> shift) << bits) \
                | (np.int64(yuv[f, 2, i]) >> shift)
            counts[region[i], table[code]] += 1
        for r in range(regions):
            total = np.float32(max(sizes[r], 1))
            for k in range(nbins):
                out[f, r, k] = np.float32(counts[r, k]) / total


@functools.lru_cache(maxsize=16)
def region_map(rows: int, cols: int, grid: int) -> np.ndarray:
    """The region (of a grid x grid split) of each sample of a rows x cols grid, row-major."""
    r = np.arange(rows)[:, None] * grid // max(rows, 1)
    c = np.arange(cols)[None, :] * grid // max(cols, 1)
    return (r * grid + c).astype(np.int32).ravel()


def yuv_histograms(yuv: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4), full_range: bool = False,
                   shape: tuple[int, int] | None = None, grid: int = 1) -> np.ndarray:
    """(frames, 3, pixels) uint8 Y, Cb, Cr samples -> (frames, bins) normalised HSV histograms,
    or with `shape` (the samples' rows and columns) and grid > 1, (frames, grid * grid, bins):
    one histogram per region of a grid x grid split of the frame.

    One compiled pass per frame: each sample's quantised (Y, Cb, Cr) code indexes the bin
    table and is counted, with no per-pixel intermediate arrays."""
    yuv = np.ascontiguousarray(yuv, np.uint8)
    regional = grid > 1 and shape is not None
    region = region_map(*shape, grid) if regional else np.zeros(yuv.shape[2], np.int32)
    out = np.empty((len(yuv), grid * grid if regional else 1, int(np.prod(bins))), np.float32)
    _count_bins(yuv, _yuv_bin_table(tuple(bins), full_range), region, out)
    return out if regional else out[:, 0]


DARK = 0.1              # a sample is black below this share of the luma range above black


@numba.njit(cache=True, nogil=True)
def _count_below(luma: np.ndarray, below: int, out: np.ndarray) -> None:
    for f in range(luma.shape[0]):
        k = 0
        for i in range(luma.shape[1]):
            k += luma[f, i] < below
        out[f] = k / max(luma.shape[1], 1)


def dark_share(luma: np.ndarray, full_range: bool) -> np.ndarray:
    """(frames, pixels) uint8 luma samples -> (frames,) share of samples that are black: the
    frames a fade passes through."""
    black, white = (0, 255) if full_range else (16, 235)
    out = np.empty(len(luma), np.float64)
    _count_below(np.asarray(luma, np.uint8), math.ceil(black + DARK * (white - black)), out)
    return out


def yuv_histogram(yuv: np.ndarray, bins: tuple[int, int, int] = (16, 4, 4), full_range: bool = False) -> np.ndarray:
    """`hsv_histogram` of one frame given as (3, ...) Y, Cb, Cr samples."""
    return yuv_histograms(yuv.reshape(1, 3, -1), bins, full_range)[0]


def intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.minimum(a, b).sum())


def whole_frame(regional: np.ndarray, shape: tuple[int, int], grid: int) -> np.ndarray:
    """(frames, regions, bins) region histograms -> (frames, bins) the whole frame's, each
    region weighted by its share of the samples."""
    weights = np.bincount(region_map(*shape, grid), minlength=grid * grid).astype(np.float32)
    return np.einsum("frb,r->fb", regional, weights / weights.sum()).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _change_one(x: np.ndarray, a: int, b: int) -> float:
    """The mean over regions r of 1 - sum_k min(x[a, r, k], x[b, r, k]); x is (frames, regions, bins)."""
    regions, nbins = x.shape[1], x.shape[2]
    total = 0.0
    for r in range(regions):
        s0 = s1 = s2 = s3 = 0.0           # four sums: the additions do not wait on each other
        k = 0
        while k + 4 <= nbins:
            s0 += min(x[a, r, k], x[b, r, k])
            s1 += min(x[a, r, k + 1], x[b, r, k + 1])
            s2 += min(x[a, r, k + 2], x[b, r, k + 2])
            s3 += min(x[a, r, k + 3], x[b, r, k + 3])
            k += 4
        while k < nbins:
            s0 += min(x[a, r, k], x[b, r, k])
            k += 1
        total += 1.0 - ((s0 + s1) + (s2 + s3))
    return total / regions


@numba.njit(cache=True, nogil=True)
def _changes(x: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[i] = the change between frames a[i] and b[i] of x (`_change_one`). Equal to the
    NumPy expression in `change`'s docstring
    (test_compiled_histograms_and_motion_equal_their_definitions)."""
    for i in range(len(a)):
        out[i] = _change_one(x, a[i], b[i])


@numba.njit(cache=True, nogil=True)
def _changes_at(x: np.ndarray, base: int, distances: np.ndarray, first: int, n: int, out: np.ndarray) -> None:
    """out[k, i] = the change between frames j - distances[k] and j, j = first + i, both
    clipped to [0, n - 1]; x holds the frames from `base` on."""
    for k in range(len(distances)):
        for i in range(out.shape[1]):
            j = first + i
            out[k, i] = _change_one(x, min(max(j - distances[k], 0), n - 1) - base, min(max(j, 0), n - 1) - base)


def change(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - histogram intersection of frames a[i] and b[i] of `x` ((frames, bins), or
    (frames, regions, bins): the mean over the regions), i.e.
    (1 - np.minimum(x[a], x[b]).sum(-1)), averaged over the regions; one compiled pass."""
    x3 = x[:, None, :] if x.ndim == 2 else x
    out = np.empty(len(a), np.float64)
    _changes(np.ascontiguousarray(x3, np.float32), np.asarray(a, np.int64), np.asarray(b, np.int64), out)
    return out


def changes_at(x: np.ndarray, base: int, distances: list[int], first: int, upto: int, n: int) -> np.ndarray:
    """(len(distances), upto - first): row k holds, for each frame j in [first, upto), the
    change between frames j - distances[k] and j, both clipped to [0, n - 1] (`change`, many
    distances in one compiled pass); `x` ((frames, bins) or (frames, regions, bins)) holds
    the frames from `base` on."""
    x3 = x[:, None, :] if x.ndim == 2 else x
    out = np.empty((len(distances), max(upto - first, 0)), np.float64)
    _changes_at(np.ascontiguousarray(x3, np.float32), base, np.asarray(distances, np.int64), first, n, out)
    return out
