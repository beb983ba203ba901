"""Decode a trailer once with PyAV: shot detection on small frames, keyframes at model size,
and the audio track mixed to mono and resampled to 44.1 kHz.

Every frame is sampled on a coarse grid (about `shots.thumb_height` rows) straight from
the decoder's Y/Cb/Cr planes, for the colour histogram and the motion meter: no scaling
and no RGB conversion per frame. Only the frames chosen as keyframes are converted,
at model resolution. Full-size frames never leave this function.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterator

import av
import fsspec
import numba
import numpy as np
import soxr
from av.video.reformatter import VideoReformatter

from featurize.config import FeaturizeConfig
from featurize.audio import SAMPLE_RATE
from featurize.lowlevel import MotionMeter
from featurize.shots import ShotTracker, yuv_histograms


class DecodeError(RuntimeError):
    """A file that opens but holds no usable video."""


@dataclass
class DecodedTrailer:
    keyframes: np.ndarray                 # (t, S, S, 3) uint8, S = backbone image size
    frame_times: np.ndarray               # (t,) float32 seconds
    shot_starts: list[int]                # frame index where each shot starts
    n_frames: int
    duration_s: float
    fps: float
    width: int
    height: int
    video_codec: str
    shot_lengths_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    motion: float = 0.0                   # share of active pixels between consecutive frames
    audio: np.ndarray | None = None       # mono float32 at 44.1 kHz; None: no audio stream
    audio_codec: str = ""
    sample_rate: int = 0                  # of the source audio stream


@contextlib.contextmanager
def open_media(path: str) -> Iterator[av.container.InputContainer]:
    """av.open for a local path or any fsspec URL (s3://...)."""
    if "://" in path and not path.startswith("file://"):
        with fsspec.open(path, "rb") as fh, av.open(fh) as container:
            yield container
    else:
        with av.open(path.removeprefix("file://")) as container:
            yield container


def keyframe_size(cfg: FeaturizeConfig) -> tuple[int, int]:
    """(short side after resize, side of the stored square): the ImageNet eval resize to
    256/224 of the crop, then the crop itself, or the whole square 10-crop cuts from."""
    short = int(round(cfg.backbone.image_size * 256 / 224))
    return short, short if cfg.backbone.ten_crop else cfg.backbone.image_size


def subsample(n: int, cap: int) -> np.ndarray:
    """Indices of at most `cap` of n items, spread uniformly over time (all when cap <= 0)."""
    if cap <= 0 or n <= cap:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cap)).astype(int))


def keyframe_array(frame: av.VideoFrame, size: int, short: int) -> np.ndarray:
    """Short side to `short` (scaled by FFmpeg, area averaging), then a centre crop size x size."""
    w, h = frame.width, frame.height
    scale = short / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    # Planar RGB out of swscale: the pixels of packed rgb24 (to one level of rounding) at about
    # half the cost (swscale's packed-RGB output path is slower); PyAV stacks the planes into
    # (h, w, 3) RGB.
    img = frame.reformat(format="gbrp", width=nw, height=nh, interpolation="AREA").to_ndarray()
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size])


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

    def __call__(self, frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
        """-> ((3, h, w) uint8 Y, Cb, Cr samples on the grid, full range?)"""
        yuv, full = self.sample(frame)
        return yuv.reshape(3, *self._shape), full


class FrameBatcher:
    """Decoded frames in groups: each frame's samples are gathered into a row as it arrives;
    histograms and motion are counted per group by compiled passes, then the shot tracker
    takes the group. Bounded: `size` frames are held at a time."""

    def __init__(self, sampler: PlaneSampler, tracker: ShotTracker, motion: MotionMeter,
                 bins: tuple[int, int, int], size: int = 32):
        self.sampler, self.tracker, self.motion, self.bins, self.size = sampler, tracker, motion, bins, size
        self._buf = np.zeros((size, 3, 0), np.uint8)
        self._frames: list[av.VideoFrame] = []
        self._times: list[float] = []
        self._full = False

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
            self._buf = np.zeros((self.size, *yuv.shape), np.uint8)
        if yuv is not row or n != n0:
            self._buf[n] = yuv
        self._full = full
        self._frames.append(frame)
        self._times.append(time)
        if len(self._frames) == self.size:
            self.flush()

    def flush(self) -> None:
        n = len(self._frames)
        if not n:
            return
        yuv = self._buf[:n]
        hists = yuv_histograms(yuv, self.bins, self._full)
        self.tracker.push_many(hists, self._times, self._frames)
        self.motion.push_many(yuv[:, 0])
        self._frames, self._times = [], []


# Integer sample formats -> (offset, scale) to float in [-1, 1).
_INT_SCALE = {"u8": (128.0, 128.0), "s16": (0.0, 32768.0), "s32": (0.0, 2147483648.0), "s64": (0.0, 2.0 ** 63)}


def _channels(frame: av.AudioFrame) -> np.ndarray:
    """(channels, samples) float32 of an audio frame; the decoder's own buffers when it
    outputs float (AAC, Opus, MP3 do), read in place."""
    n, ch = frame.samples, frame.layout.nb_channels
    name, planar = frame.format.name, frame.format.is_planar
    if name in ("fltp", "flt"):
        if planar:
            return np.stack([np.frombuffer(p, np.float32, n) for p in frame.planes[:ch]]) if ch > 1 \
                else np.frombuffer(frame.planes[0], np.float32, n)[None]
        return np.frombuffer(frame.planes[0], np.float32, n * ch).reshape(n, ch).T
    a = frame.to_ndarray()
    a = a if planar else a.reshape(n, ch).T
    offset, scale = _INT_SCALE.get(name.rstrip("p"), (0.0, 1.0))
    return ((a.astype(np.float32) - offset) / scale) if scale != 1.0 else a.astype(np.float32)


class AudioTrack:
    """The audio stream gathered as it is demuxed: mono and stereo frames are mixed straight
    from the decoder's buffers, and the whole track is resampled to 44.1 kHz once, at the end
    (soxr, high quality), instead of a resampler call per 1024-sample frame.

    The mix is FFmpeg's (what `av.AudioResampler` gives): stereo is (L + R) / sqrt(2), and
    other layouts (5.1...) go through its rematrixing. A sample rate change mid-stream starts
    a new run, resampled on its own."""

    def __init__(self) -> None:
        self._runs: list[tuple[int, list[np.ndarray]]] = []
        self._rematrix: av.AudioResampler | None = None

    def _mono(self, frame: av.AudioFrame) -> np.ndarray:
        x = _channels(frame) if frame.layout.nb_channels <= 2 else None
        if x is None:
            if self._rematrix is None:
                self._rematrix = av.AudioResampler(format="flt", layout="mono", rate=frame.sample_rate)
            frame.pts = None
            return np.concatenate([o.to_ndarray().reshape(-1) for o in self._rematrix.resample(frame)]
                                  or [np.zeros(0, np.float32)])
        return x[0] if len(x) == 1 else (x[0] + x[1]) * np.float32(np.sqrt(0.5))

    def push(self, frame: av.AudioFrame) -> None:
        if not frame.samples:
            return
        rate = int(frame.sample_rate)
        if not self._runs or self._runs[-1][0] != rate:
            self._runs.append((rate, []))
            self._rematrix = None
        self._runs[-1][1].append(self._mono(frame))

    def finish(self) -> np.ndarray | None:
        """Mono float32 at 44.1 kHz, or None when no audio frame was decoded."""
        parts = []
        for rate, blocks in self._runs:
            y = np.concatenate(blocks)
            parts.append(y if rate == SAMPLE_RATE else soxr.resample(y, rate, SAMPLE_RATE, quality="HQ"))
        self._runs = []
        if not parts:
            return None
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)).astype(np.float32, copy=False)


def decode_trailer(path: str, cfg: FeaturizeConfig, audio: bool = True) -> DecodedTrailer:
    """One pass over the file: video frames feed the shot tracker (and motion meter), audio
    is resampled to 44.1 kHz mono. Any decode error propagates: the caller records it."""
    sc = cfg.shots
    short, size = keyframe_size(cfg)
    bins = (sc.hue_bins, sc.sat_bins, sc.val_bins)
    tracker = ShotTracker(smooth=sc.smooth, radius=sc.radius, threshold=sc.threshold,
                          max_candidates=sc.max_candidates,
                          keep=lambda frame: keyframe_array(frame, size, short))   # full frames are not held
    motion = MotionMeter()
    with open_media(path) as container:
        if not container.streams.video:
            raise DecodeError("no video stream" + (" (audio only)" if container.streams.audio else ""))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = cfg.decode_threads or math.ceil(cfg.decode_cpus)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise DecodeError("video stream has no frame size")
        astream = container.streams.audio[0] if audio and container.streams.audio else None
        track = AudioTrack()
        batcher = FrameBatcher(PlaneSampler(sc.thumb_height), tracker, motion, bins)
        n, last_time = 0, 0.0
        for frame in container.decode(*[s for s in (stream, astream) if s is not None]):
            if isinstance(frame, av.AudioFrame):
                track.push(frame)
                continue
            t = frame.time if frame.time is not None else (n / fps if fps else float(n))
            batcher.push(frame, float(t))
            n, last_time = n + 1, float(t)
        batcher.flush()
        codec = stream.codec_context.name
        acodec = astream.codec_context.name if astream else ""
        src_rate = int(astream.codec_context.sample_rate or 0) if astream else 0
    if n == 0:
        raise DecodeError("no decodable video frames")
    kfs = tracker.finish()
    kfs = [kfs[i] for i in subsample(len(kfs), cfg.max_keyframes)]
    keyframes = np.stack([k.payload for k in kfs])
    frame_dur = 1.0 / fps if fps else 0.0
    duration = last_time + frame_dur
    y = track.finish()
    return DecodedTrailer(
        keyframes=keyframes,
        frame_times=np.array([k.time for k in kfs], np.float32),
        shot_starts=[k.shot[0] for k in kfs],
        n_frames=n, duration_s=duration, fps=fps, width=int(width), height=int(height), video_codec=codec,
        shot_lengths_s=np.array([(k.shot[1] - k.shot[0]) * frame_dur for k in kfs], np.float32),
        motion=motion.value, audio=y, audio_codec=acodec, sample_rate=src_rate,
    )
