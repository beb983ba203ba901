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
from av.stream import Disposition
from av.video.reformatter import VideoReformatter

from featurize.config import FeaturizeConfig
from featurize.audio import SAMPLE_RATE
from featurize.backbone import preprocess
from featurize.lowlevel import MotionMeter
from featurize import transnet
from featurize.shots import CandidatePool, Keyframe, ShotTracker, subsample, yuv_histograms


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
    video_stream: int = 0                 # index of the stream decoded
    audio_stream: int = -1                # -1: no audio stream
    decode_errors: int = 0                # packets skipped as undecodable (video and audio)
    frames_lost: int = 0                  # video packets that gave no frame
    audio_repaired: int = 0               # non-finite audio samples replaced by silence
    similarity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # smoothed, frame i vs i + 1
    cuts: list[int] = field(default_factory=list)   # frame index where each shot after the first starts
    # With a learned detector (`shots.detector` other than hsv) the shots are found after this
    # pass: `keyframes` / `frame_times` are then keyframe candidates at frames `candidates`,
    # `thumbs` every frame at the detector's size, until `place_shots` chooses among them.
    thumbs: np.ndarray | None = None                # (n_frames, 27, 48, 3) uint8 RGB
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def shots_pending(self) -> bool:
        return self.thumbs is not None


@contextlib.contextmanager
def open_media(path: str) -> Iterator[av.container.InputContainer]:
    """av.open for a local path or any fsspec URL (s3://...)."""
    if "://" in path and not path.startswith("file://"):
        with fsspec.open(path, "rb") as fh, av.open(fh) as container:
            yield container
    else:
        with av.open(path.removeprefix("file://")) as container:
            yield container


CANDIDATES_PER_S = 8     # a learned detector's keyframe candidates start this dense (then thin out when
                         # `shots.candidates` are held): a shot shorter than 1/8 s may get no keyframe


def frame_duration(fps: float) -> float:
    """Seconds per frame; 25 fps where the stream declares no usable rate."""
    return 1.0 / fps if fps else 1.0 / 25


def small_rgb(frame: av.VideoFrame, turns: int) -> np.ndarray:
    """The frame as the learned shot detector reads it: 48 x 27 RGB upright, scaled bicubic
    by swscale (what TransNetV2's own `ffmpeg -s 48x27` call does)."""
    w, h = (transnet.HEIGHT, transnet.WIDTH) if turns % 2 else (transnet.WIDTH, transnet.HEIGHT)
    img = frame.reformat(width=w, height=h, format="rgb24", interpolation="BICUBIC").to_ndarray()
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


def keyframe_size(cfg: FeaturizeConfig) -> tuple[int, int]:
    """(short side after resize, side of the stored square): the weights' eval resize (256/224
    of the crop for the paper's), then the crop itself, or the whole square 10-crop cuts from."""
    pre = preprocess(cfg.backbone)
    return pre.resize, pre.resize if cfg.backbone.ten_crop else pre.crop


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
                   rotation: int | None = None) -> np.ndarray:
    """Short side to `short` at the display aspect (scaled by FFmpeg, area averaging),
    turned upright by the display matrix, then a centre crop size x size.

    `sar`: the stream's sample aspect ratio (anamorphic sources have wide pixels);
    `rotation`: the display matrix angle, read from the frame when not given."""
    turns = quarter_turns(frame.rotation if rotation is None else rotation)
    w, h = display_size(frame.width, frame.height, sar)
    scale = short / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    # Planar RGB out of swscale: the pixels of packed rgb24 (to one level of rounding) at about
    # half the cost (swscale's packed-RGB output path is slower); PyAV stacks the planes into
    # (h, w, 3) RGB.
    img = frame.reformat(format="gbrp", width=nw, height=nh, interpolation="AREA").to_ndarray()
    if turns:
        img = np.rot90(img, turns)
    ih, iw = img.shape[:2]
    top, left = (ih - size) // 2, (iw - size) // 2
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
                 bins: tuple[int, int, int], size: int = 32, payloads: bool = True):
        self.sampler, self.tracker, self.motion, self.bins, self.size = sampler, tracker, motion, bins, size
        self.payloads = payloads          # False: the tracker gets no frames (it picks no keyframes)
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
        self._frames.append(frame if self.payloads else None)
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


MAX_GAP_S = 5.0         # a forward jump in timestamps longer than this is a discontinuity, not a pause
AUDIO_GAP_S = 0.05      # audio that resumes later than this after the last samples gets silence between
PEAK = 1.0              # audio samples are clipped to [-PEAK, PEAK]: full scale


class Timeline:
    """Raw presentation times -> one increasing timeline that starts at 0 with the stream's
    first item. A timestamp that goes back (joined segments, a clock reset) or leaps ahead
    by more than `max_gap` is a discontinuity: the item is placed right after the previous
    one and later items keep the new offset. Items without a timestamp follow the last."""

    def __init__(self, max_gap: float = MAX_GAP_S):
        self.max_gap = max_gap
        self.first: float | None = None       # raw time of the first item
        self.end = 0.0                        # where the next item is due
        self._shift = 0.0
        self.discontinuities = 0

    def place(self, raw: float | None, duration: float) -> float:
        if raw is None or not math.isfinite(raw):
            t = self.end
        elif self.first is None:                  # the first timestamp: items before it had none
            self.first, self._shift, t = raw - self.end, self.end - raw, self.end
        else:
            t = raw + self._shift
            if t < self.end - max(duration, 1e-6) / 2 or t > self.end + self.max_gap:
                self._shift += self.end - t
                self.discontinuities += 1
                t = self.end
        self.end = max(self.end, t + duration)
        return t


def clean_audio(y: np.ndarray) -> int:
    """Replace non-finite samples by silence and clip to full scale, in place, before any
    transform sees them (a resampler would smear one NaN over its whole filter length, and
    full scale keeps every spectrogram magnitude finite in float16). -> samples replaced."""
    bad = 0
    if not np.isfinite(y).all():
        mask = ~np.isfinite(y)
        bad = int(mask.sum())
        y[mask] = 0.0
    np.clip(y, -PEAK, PEAK, out=y)
    return bad


class AudioTrack:
    """The audio stream gathered as it is demuxed: mono and stereo frames are mixed straight
    from the decoder's buffers, and the whole track is resampled to 44.1 kHz once, at the end
    (soxr, high quality), instead of a resampler call per 1024-sample frame.

    The mix is FFmpeg's (what `av.AudioResampler` gives): stereo is (L + R) / sqrt(2), and
    other layouts (5.1...) go through its rematrixing. A sample rate change mid-stream starts
    a new run, resampled on its own. Frames are placed on their own `Timeline`: where the
    container has no audio for a while, silence fills the gap; `first` is the raw time of
    the first sample, for placing the track on the video's timeline."""

    def __init__(self) -> None:
        self._runs: list[tuple[int, list[np.ndarray]]] = []
        self._rematrix: av.AudioResampler | None = None
        self.timeline = Timeline()
        self._written = 0.0                   # seconds of samples gathered so far
        self.repaired = 0                     # non-finite samples replaced by silence

    @property
    def first(self) -> float | None:
        return self.timeline.first

    def _mono(self, frame: av.AudioFrame) -> np.ndarray:
        x = _channels(frame) if frame.layout.nb_channels <= 2 else None
        if x is None:
            if self._rematrix is None:
                self._rematrix = av.AudioResampler(format="flt", layout="mono", rate=frame.sample_rate)
            frame.pts = None
            return np.concatenate([o.to_ndarray().reshape(-1) for o in self._rematrix.resample(frame)]
                                  or [np.zeros(0, np.float32)])
        return x[0] if len(x) == 1 else (x[0] + x[1]) * np.float32(np.sqrt(0.5))

    def push(self, frame: av.AudioFrame, time: float | None = None) -> None:
        """Add a decoded frame; `time`: its presentation time in seconds (None: unknown)."""
        if not frame.samples:
            return
        rate = int(frame.sample_rate)
        if not self._runs or self._runs[-1][0] != rate:
            self._runs.append((rate, []))
            self._rematrix = None
        blocks = self._runs[-1][1]
        t = self.timeline.place(time, frame.samples / rate)
        if t > self._written + AUDIO_GAP_S:                        # the container has no audio here
            gap = np.zeros(int(round((t - self._written) * rate)), np.float32)
            blocks.append(gap)
            self._written += len(gap) / rate
        y = self._mono(frame)
        blocks.append(y)
        self._written += len(y) / rate

    def finish(self, lead: float = 0.0) -> np.ndarray | None:
        """Mono float32 at 44.1 kHz, finite and within full scale, or None when no audio frame
        was decoded. `lead`: seconds from the video's first frame to the audio's first sample
        (silence is put before a late track, a track that starts early is cut)."""
        parts = []
        for rate, blocks in self._runs:
            y = np.concatenate(blocks)
            self.repaired += clean_audio(y)
            parts.append(y if rate == SAMPLE_RATE else soxr.resample(y, rate, SAMPLE_RATE, quality="HQ"))
        self._runs = []
        if not parts:
            return None
        y = (parts[0] if len(parts) == 1 else np.concatenate(parts)).astype(np.float32, copy=False)
        shift = int(round(lead * SAMPLE_RATE))
        if shift > 0:
            y = np.concatenate([np.zeros(shift, np.float32), y])
        elif shift < 0:
            y = y[-shift:]
        np.clip(y, -PEAK, PEAK, out=y)                                  # the resampler's overshoot
        return y


def seconds(frame: av.frame.Frame, time_base) -> float | None:
    """A decoded frame's presentation time in seconds, from its stream's time base (frames
    drained from a decoder at the end of a file carry no time base of their own)."""
    return None if frame.pts is None or time_base is None else float(frame.pts * time_base)


def _is(stream, flag: Disposition) -> bool:
    return bool(int(stream.disposition) & int(flag))


def choose_stream(streams, best):
    """The stream a player would show: never an attached picture (cover art, thumbnails);
    among the rest, one marked default, FFmpeg's own best choice (`av_find_best_stream`:
    most decoded frames, then bit rate) first. None when no stream is left."""
    usable = [s for s in streams if not _is(s, Disposition.attached_pic)]
    pool = [s for s in usable if _is(s, Disposition.default)] or usable
    if not pool:
        return None
    return best if best is not None and any(s.index == best.index for s in pool) else pool[0]


@dataclass
class Damage:
    """What decoding through damage skipped."""
    errors: int = 0               # packets the decoders refused, and a demuxer that gave up
    video_packets: int = 0
    message: str = ""             # the first error, for a file where nothing is left

    def note(self, e: Exception) -> None:
        self.errors += 1
        self.message = self.message or f"{type(e).__name__}: {e}"


def _packets(container, streams, damage: Damage):
    """Demuxed packets of `streams`, then one empty packet per stream to drain its decoder.
    A demuxer error ends the file where it stands: what came before is kept."""
    try:
        for packet in container.demux(*streams):
            if packet.size:
                yield packet
    except av.error.FFmpegError as e:
        damage.note(e)
    for s in streams:
        yield s, None


def decode_trailer(path: str, cfg: FeaturizeConfig, audio: bool = True) -> DecodedTrailer:
    """One pass over the file: video frames feed the shot tracker (and motion meter), audio
    is resampled to 44.1 kHz mono. Packets are decoded one by one, and those a decoder
    refuses are skipped and counted, so damage costs the frames it hits, not the trailer;
    the file fails (DecodeError, or the error that opened it) only when no frame decodes."""
    sc = cfg.shots
    short, size = keyframe_size(cfg)
    bins = (sc.hue_bins, sc.sat_bins, sc.val_bins)
    motion = MotionMeter()
    damage = Damage()
    with open_media(path) as container:
        stream = choose_stream(container.streams.video, container.streams.best("video"))
        if stream is None:
            what = "only an attached picture" if container.streams.video else "no video stream"
            raise DecodeError(what + (" (audio only)" if container.streams.audio else ""))
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = cfg.decode_threads or math.ceil(cfg.decode_cpus)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate and float(rate) < 1000 else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise DecodeError("video stream has no frame size")
        ratio = stream.codec_context.sample_aspect_ratio
        sar = float(ratio) if ratio and float(ratio) > 0 else 1.0
        learned = sc.learned                 # shots found later from `thumbs`; candidates kept meanwhile
        tracker = ShotTracker(smooth=sc.smooth, radius=sc.radius, threshold=sc.threshold,
                              max_candidates=sc.max_candidates,
                              keep=None if learned else lambda frame: keyframe_array(frame, size, short, sar))
        pool, thumbs = CandidatePool(sc.candidates, round((fps or 25) / CANDIDATES_PER_S)), []
        astream = choose_stream(container.streams.audio, container.streams.best("audio")) if audio else None
        track = AudioTrack()
        batcher = FrameBatcher(PlaneSampler(sc.thumb_height), tracker, motion, bins, payloads=not learned)
        frame_dur = frame_duration(fps)
        timeline = Timeline()
        vtb, atb = stream.time_base, astream.time_base if astream else None
        n, rotation = 0, 0
        for packet in _packets(container, [s for s in (stream, astream) if s is not None], damage):
            if isinstance(packet, tuple):                          # end of file: drain that decoder
                s, packet = packet
            else:
                s = packet.stream
                damage.video_packets += s is stream
            try:
                frames = s.codec_context.decode(packet)
            except av.error.FFmpegError as e:
                damage.note(e)
                continue
            for frame in frames:
                if s is not stream:
                    track.push(frame, seconds(frame, atb))
                    continue
                if n == 0:
                    rotation = int(frame.rotation or 0)
                t = timeline.place(seconds(frame, vtb), frame_dur)
                batcher.push(frame, t)
                if learned:
                    thumbs.append(small_rgb(frame, quarter_turns(rotation)))
                    pool.push(n, t, lambda: keyframe_array(frame, size, short, sar))  # noqa: B023 (called at once)
                n += 1
        batcher.flush()
        codec = stream.codec_context.name
        acodec = astream.codec_context.name if astream else ""
        src_rate = int(astream.codec_context.sample_rate or 0) if astream else 0
        indices = stream.index, astream.index if astream else -1
    if n == 0:
        raise DecodeError("no decodable video frames" + (f" ({damage.message})" if damage.message else ""))
    kfs = tracker.finish()
    if learned:                              # (index, time, image) candidates stand in until the shots are known
        kfs = [Keyframe(i, t, (i, i), img) for i, t, img in pool.items]
    else:
        kfs = [kfs[i] for i in subsample(len(kfs), cfg.max_keyframes)]
    keyframes = np.stack([k.payload for k in kfs])
    lead = (track.first - timeline.first) if track.first is not None and timeline.first is not None else 0.0
    y = track.finish(lead=max(-MAX_GAP_S, min(lead, timeline.end)))
    w, h = display_size(int(width), int(height), sar, quarter_turns(rotation))
    return DecodedTrailer(
        keyframes=keyframes,
        frame_times=np.array([k.time for k in kfs], np.float32),
        shot_starts=[] if learned else [k.shot[0] for k in kfs],
        n_frames=n, duration_s=timeline.end, fps=fps, width=w, height=h, video_codec=codec,
        shot_lengths_s=np.array([] if learned else [(k.shot[1] - k.shot[0]) * frame_dur for k in kfs], np.float32),
        thumbs=np.stack(thumbs) if learned else None,
        candidates=np.array([k.index for k in kfs] if learned else [], np.int64),
        motion=motion.value, audio=y, audio_codec=acodec, sample_rate=src_rate,
        video_stream=indices[0], audio_stream=indices[1],
        decode_errors=damage.errors, frames_lost=max(0, damage.video_packets - n),
        audio_repaired=track.repaired, similarity=tracker.smoothed.astype(np.float32),
        cuts=[] if learned else list(tracker.boundaries),
    )


def find_shots(probs: np.ndarray, n_frames: int, fps: float, candidates: np.ndarray,
               cfg: FeaturizeConfig) -> tuple[transnet.Placement, np.ndarray]:
    """A learned detector's per-frame transition probabilities -> which candidates become
    keyframes (`transnet.place`), and the lengths of their shots in seconds."""
    p = transnet.place(transnet.shot_starts(probs, cfg.shots.transnet_threshold), n_frames, candidates,
                       cfg.max_keyframes)
    return p, (p.shot_lengths * frame_duration(fps)).astype(np.float32)


def place_shots(d: DecodedTrailer, probs: np.ndarray, cfg: FeaturizeConfig) -> DecodedTrailer:
    """A decoded trailer whose shots wait for a learned detector -> its final keyframes
    (`find_shots`). `similarity` becomes 1 - probability, the curve the QA plot draws."""
    p, d.shot_lengths_s = find_shots(probs, d.n_frames, d.fps, d.candidates, cfg)
    d.keyframes, d.frame_times = d.keyframes[p.chosen], d.frame_times[p.chosen]
    d.shot_starts, d.cuts = p.shot_starts.tolist(), p.cuts
    d.similarity = (1.0 - np.asarray(probs, np.float32))
    d.thumbs, d.candidates = None, np.zeros(0, np.int64)
    return d
