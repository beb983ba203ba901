"""What the decode pass reads from each video frame: a grid of (Y, Cb, Cr) samples for the
colour histograms and the motion meter, straight from the decoder's planes (no scaling and
no RGB conversion per frame), batched for the compiled passes; a keyframe at model size;
a small RGB frame for a learned shot detector. Full-size frames never leave the pass."""
from __future__ import annotations

import av
import numba
import numpy as np
from av.video.reformatter import VideoReformatter

from featurize.lowlevel import MotionMeter
from featurize.histograms import dark_share, whole_frame, yuv_histograms
from featurize.shots import ShotTracker


def display_size(width: int, height: int, sar: float = 1.0, turns: int = 0) -> tuple[int, int]:
    """(width, height) as a player shows the picture: non-square pixels stretched to the
    sample aspect ratio, then turned by `turns` quarter turns of the display matrix."""
    w = max(1, int(round(width * sar))) if sar and sar > 0 else width
    return (height, w) if turns % 2 else (w, height)


def quarter_turns(rotation: float) -> int:
    """The display matrix's angle (degrees counter-clockwise, as FFmpeg reports it) as the
    number of counter-clockwise quarter turns np.rot90 makes; other angles are rare and
    rounded to the nearest quarter."""
    return int(round((rotation or 0) / 90.0)) % 4


def keyframe_array(frame: av.VideoFrame, size: int, short: int, sar: float = 1.0,
                   rotation: int | None = None, scaler: VideoReformatter | None = None) -> np.ndarray:
    """Short side to `short` at the display aspect (scaled by FFmpeg, area averaging),
    turned upright by the display matrix, then a centre crop size x size.

    `sar`: the stream's sample aspect ratio (anamorphic sources have wide pixels);
    `rotation`: the display matrix angle, read from the frame when not given; `scaler`: a
    reformatter kept for the whole video (its scaling context is built once, not per
    keyframe: about 0.9 ms each at 640x480)."""
    turns = quarter_turns(frame.rotation if rotation is None else rotation)
    w, h = display_size(frame.width, frame.height, sar)
    scale = short / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    # Planar RGB out of swscale: the pixels of packed rgb24 (to one level of rounding) at about
    # half the cost (swscale's packed-RGB output path is slower); PyAV stacks the planes into
    # (h, w, 3) RGB.
    img = (scaler or VideoReformatter()).reformat(frame, format="gbrp", width=nw, height=nh,
                                                  interpolation="AREA").to_ndarray()
    if turns:
        img = np.rot90(img, turns)
    ih, iw = img.shape[:2]
    top, left = (ih - size) // 2, (iw - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def small_rgb(frame: av.VideoFrame, turns: int, size: tuple[int, int],
              scaler: VideoReformatter | None = None) -> np.ndarray:
    """The frame as a learned shot detector reads it: (height, width) = `size` RGB, upright,
    scaled bicubic by swscale (what TransNetV2's own `ffmpeg -s 48x27` call does); `scaler`
    as in `keyframe_array`."""
    h, w = size
    w, h = (h, w) if turns % 2 else (w, h)
    img = (scaler or VideoReformatter()).reformat(frame, width=w, height=h, format="rgb24",
                                                  interpolation="BICUBIC").to_ndarray()
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


# 8-bit planar Y'CbCr layouts read directly: name -> (log2 chroma x step, log2 chroma y step).
PLANAR_YUV = {"yuv420p": (1, 1), "yuvj420p": (1, 1), "yuv422p": (1, 0), "yuvj422p": (1, 0),
              "yuv444p": (0, 0), "yuvj444p": (0, 0), "yuv440p": (0, 1), "yuvj440p": (0, 1),
              "yuv411p": (2, 0)}


JPEG_RANGE = 2                            # AVCOL_RANGE_JPEG: full-range samples


@numba.njit(cache=True, nogil=True)
def _gather_yuv(y: np.ndarray, u: np.ndarray, v: np.ndarray, iy: np.ndarray, ic: np.ndarray, out: np.ndarray) -> None:
    """out[:, i] = (Y, Cb, Cr) of grid sample i, read in place from a decoded frame.

    y, u, v: the frame's three planes as flat uint8 buffers, rows `line_size` bytes apart
    (padding included); iy: (pixels,) offsets into the luma plane; ic: (pixels,) offsets of
    the chroma sample covering the same position (see `PlaneSampler._offsets`);
    out: (3, pixels) uint8. Equal to NumPy indexing of the planes
    (test_plane_sampler_reads_the_grid_of_each_plane).
    """
    for i in range(iy.size):
        out[0, i] = y[iy[i]]
        out[1, i] = u[ic[i]]
        out[2, i] = v[ic[i]]


class PlaneSampler:
    """A grid of (Y, Cb, Cr) samples from a decoded frame, about `rows` rows high.

    8-bit planar YUV frames (nearly every H.264/HEVC/VP9 trailer) are read in place: one
    compiled gather of the three planes at precomputed offsets. Other pixel formats
    (10-bit, NV12, RGB...) are first scaled by swscale to a small yuv444p frame, then read
    the same way.
    """

    def __init__(self, rows: int):
        self.rows = rows
        self._small = VideoReformatter()
        self._key: tuple | None = None
        self._idx: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.intp), np.zeros(0, np.intp))
        self._shape = (0, 0)

    def _offsets(self, frame: av.VideoFrame, planes, cx: int, cy: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat offsets of the sample grid in the luma and chroma planes, cached per frame
        geometry. The grid takes one row and column every `step` = height / rows lines,
        starting at step // 2 (the centre of each step x step cell). Luma sample (r, c) is
        at r * line_size + c; its chroma is subsampled by 2^cx across and 2^cy down, so the
        chroma sample covering it is at (r >> cy) * chroma line_size + (c >> cx)."""
        lines = tuple(p.line_size for p in planes[:3])
        key = (frame.width, frame.height, cx, cy, lines)
        if key != self._key:
            step = max(1, int(round(frame.height / self.rows)))
            r = np.arange(step // 2, frame.height, step)
            c = np.arange(step // 2, frame.width, step)
            self._shape = (len(r), len(c))
            self._idx = ((r[:, None] * lines[0] + c[None, :]).astype(np.intp).ravel(),
                         ((r >> cy)[:, None] * lines[1] + (c >> cx)[None, :]).astype(np.intp).ravel())
            self._key = key
        return self._idx

    def sample(self, frame: av.VideoFrame, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """-> ((3, pixels) uint8 Y, Cb, Cr samples, full range?), written into `out` when it
        has the right shape (the caller's batch row), else a new array."""
        name = frame.format.name
        if name not in PLANAR_YUV:
            h = min(self.rows, frame.height)
            frame = self._small.reformat(frame, format="yuv444p", height=h,
                                         width=max(1, round(h * frame.width / frame.height)),
                                         interpolation="AREA")
            name = "yuv444p"
        full = name.startswith("yuvj") or frame.color_range == JPEG_RANGE
        planes = frame.planes
        iy, ic = self._offsets(frame, planes, *PLANAR_YUV[name])
        if out is None or out.shape != (3, iy.size):
            out = np.empty((3, iy.size), np.uint8)
        _gather_yuv(np.frombuffer(planes[0], np.uint8), np.frombuffer(planes[1], np.uint8),
                    np.frombuffer(planes[2], np.uint8), iy, ic, out)
        return out, full

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid of the frame sampled last."""
        return self._shape

    def __call__(self, frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
        """-> ((3, h, w) uint8 Y, Cb, Cr samples on the grid, full range?)"""
        yuv, full = self.sample(frame)
        return yuv.reshape(3, *self._shape), full


class FrameBatcher:
    """Decoded frames in groups: each frame's samples are gathered into a row as it arrives;
    histograms and motion are counted per group by compiled passes, then the shot tracker
    takes the group. A group is as large as its decoded frames allow within `held_bytes`
    (`size` frames at most, `MIN_GROUP` at least): a pass over a larger group pays its
    start (tables and histograms coming back into the cache after the decoder's work)
    over more frames, and large frames come in small groups, so memory stays bounded."""

    MIN_GROUP = 8

    def __init__(self, sampler: PlaneSampler, tracker: ShotTracker, motion: MotionMeter,
                 bins: tuple[int, int, int], size: int = 64, payloads: bool = True, held_bytes: int = 32 * 2**20):
        self.sampler, self.tracker, self.motion, self.bins = sampler, tracker, motion, bins
        self.max_size, self.held_bytes, self.size = size, held_bytes, size
        self.payloads = payloads          # False: the tracker gets no frames (it picks no keyframes)
        self._buf = np.zeros((size, 3, 0), np.uint8)
        self._frames: list[av.VideoFrame] = []
        self._times: list[float] = []
        self._full = False
        self._shape = (0, 0)

    def _group_size(self, frame: av.VideoFrame) -> int:
        if not self.payloads:
            return self.max_size
        frame_bytes = max(1, sum(p.buffer_size for p in frame.planes))
        return max(min(self.MIN_GROUP, self.max_size), min(self.max_size, self.held_bytes // frame_bytes))

    def push(self, frame: av.VideoFrame, time: float) -> None:
        """Gather the frame's samples straight into the next row of the batch buffer. When the
        frame's grid size or colour range differs from the batch's (a resolution change
        mid-stream), the batch so far is flushed first and the samples, gathered into a
        fresh array, become row 0 of a buffer of the new size."""
        n0 = n = len(self._frames)
        row = self._buf[n] if self._buf.shape[2] else None
        yuv, full = self.sampler.sample(frame, row)        # gathered straight into the batch row
        if n and (yuv.shape != self._buf.shape[1:] or full != self._full):
            self.flush()                                   # the frame size or range changed mid-stream
            n = 0
        if yuv.shape != self._buf.shape[1:]:
            self.size = self._group_size(frame)
            self._buf = np.zeros((self.size, *yuv.shape), np.uint8)
        if yuv is not row or n != n0:
            self._buf[n] = yuv
        self._full, self._shape = full, self.sampler.shape
        self._frames.append(frame if self.payloads else None)
        self._times.append(time)
        if len(self._frames) == self.size:
            self.flush()

    def flush(self) -> None:
        n = len(self._frames)
        if not n:
            return
        yuv = self._buf[:n]
        grid = self.tracker.rule.region_grid
        dark = dark_share(yuv[:, 0], self._full) if self.tracker.rule.black_gap else None
        if grid > 1:
            regions = yuv_histograms(yuv, self.bins, self._full, self._shape, grid)
            self.tracker.push_many(whole_frame(regions, self._shape, grid), self._times, self._frames, regions, dark)
        else:
            self.tracker.push_many(yuv_histograms(yuv, self.bins, self._full), self._times, self._frames, None, dark)
        self.motion.push_many(yuv[:, 0])
        self._frames, self._times = [], []
