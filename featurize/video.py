"""Decode a trailer once with PyAV: shot detection on small frames, keyframes at model size,
and the audio track resampled to 44.1 kHz mono.

Every frame is scaled by FFmpeg (swscale) to a thumbnail for the colour histogram;
only the frames chosen as keyframes are converted at model resolution. Full-size
frames never leave this function.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ctt.config import FeaturizeConfig
from featurize.audio import SAMPLE_RATE
from featurize.lowlevel import MotionMeter
from featurize.shots import ShotTracker, hsv_histogram


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
        import fsspec
        with fsspec.open(path, "rb") as fh, av.open(fh) as container:
            yield container
    else:
        with av.open(path.removeprefix("file://")) as container:
            yield container


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


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
    """Short side to `short` (scaled by FFmpeg), then a centre crop size x size."""
    w, h = frame.width, frame.height
    scale = short / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    img = frame.to_ndarray(format="rgb24", width=nw, height=nh, interpolation="AREA")
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def _audio_chunks(frames, resampler) -> list[np.ndarray]:
    return [o.to_ndarray().reshape(-1) for f in frames for o in resampler.resample(f)]


def decode_trailer(path: str, cfg: FeaturizeConfig, audio: bool = True) -> DecodedTrailer:
    """One pass over the file: video frames feed the shot tracker (and motion meter), audio
    is resampled to 44.1 kHz mono. Any decode error propagates: the caller records it."""
    sc = cfg.shots
    short, size = keyframe_size(cfg)
    bins = (sc.hue_bins, sc.sat_bins, sc.val_bins)
    tracker = ShotTracker(smooth=sc.smooth, radius=sc.radius, threshold=sc.threshold,
                          max_candidates=sc.max_candidates)
    motion = MotionMeter()
    chunks: list[np.ndarray] = []
    with open_media(path) as container:
        if not container.streams.video:
            raise DecodeError("no video stream" + (" (audio only)" if container.streams.audio else ""))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise DecodeError("video stream has no frame size")
        astream = container.streams.audio[0] if audio and container.streams.audio else None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE) if astream else None
        th = min(sc.thumb_height, height)
        tw = _even(th * width / height)
        n, last_time = 0, 0.0
        thumbs = VideoReformatter()      # one swscale context for the whole pass (a frame's own is rebuilt per call)
        for packet in container.demux(*[s for s in (stream, astream) if s is not None]):
            if packet.stream.type == "audio":
                chunks += _audio_chunks(packet.decode(), resampler)
                continue
            for frame in packet.decode():
                t = frame.time if frame.time is not None else (n / fps if fps else float(n))
                thumb = thumbs.reformat(frame, format="rgb24", width=tw, height=th,
                                        interpolation="FAST_BILINEAR").to_ndarray()
                tracker.push(hsv_histogram(thumb, bins), float(t), frame)
                motion.push(thumb)
                n, last_time = n + 1, float(t)
        if resampler is not None:
            chunks += _audio_chunks([None], resampler)
        codec = stream.codec_context.name
        acodec = astream.codec_context.name if astream else ""
        src_rate = int(astream.codec_context.sample_rate or 0) if astream else 0
    if n == 0:
        raise DecodeError("no decodable video frames")
    kfs = tracker.finish()
    kfs = [kfs[i] for i in subsample(len(kfs), cfg.max_keyframes)]
    keyframes = np.stack([keyframe_array(k.payload, size, short) for k in kfs])
    frame_dur = 1.0 / fps if fps else 0.0
    duration = last_time + frame_dur
    y = np.concatenate(chunks).astype(np.float32) if chunks else None
    return DecodedTrailer(
        keyframes=keyframes,
        frame_times=np.array([k.time for k in kfs], np.float32),
        shot_starts=[k.shot[0] for k in kfs],
        n_frames=n, duration_s=duration, fps=fps, width=int(width), height=int(height), video_codec=codec,
        shot_lengths_s=np.array([(k.shot[1] - k.shot[0]) * frame_dur for k in kfs], np.float32),
        motion=motion.value, audio=y, audio_codec=acodec, sample_rate=src_rate,
    )
