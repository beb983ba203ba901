"""Small media files of the kinds real trailer collections hold, made with PyAV: late clocks,
late audio, rotated phone clips, anamorphic pixels, cover art, several audio tracks,
float PCM with non-finite samples, damaged media data, joined MPEG-TS segments."""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.stream import Disposition


def picture(i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame i: the top half bright and the bottom half dark (so orientation can be read back),
    a bar moving across, and a new colour every 2 s at 12 fps (so there are shots)."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (230, 230, 230)
    img[h // 2:] = ((i // 24) * 70 % 255, 40, 90)
    x = (i * 3) % w
    img[:, x:x + 2] = (255, 0, 0)
    return img


def gradient(i: int, size: tuple[int, int]) -> np.ndarray:
    """Red rising from 0 at the left edge to 255 at the right: a column's red says where in
    the picture's width it lies."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.round(np.linspace(0, 255, w))[None, :]
    img[..., 2] = 60 + (i // 24) * 40 % 190
    return img


def tone(seconds: float, rate: int, channels: int = 2, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * freq * t)] * channels).astype(np.float32)


def _mux_audio(out, stream, y: np.ndarray, rate: int, start: float = 0.0, fmt: str = "fltp",
               flush: bool = True) -> None:
    layout = "stereo" if len(y) == 2 else "mono"
    offset = int(round(start * rate))
    for i in range(0, y.shape[1], 1024):
        block = np.ascontiguousarray(y[:, i:i + 1024])
        if fmt == "flt":                                  # packed: (1, samples * channels)
            block = np.ascontiguousarray(block.T.reshape(1, -1))
        f = av.AudioFrame.from_ndarray(block, format=fmt, layout=layout)
        f.sample_rate, f.pts, f.time_base = rate, offset + i, Fraction(1, rate)
        for p in stream.encode(f):
            out.mux(p)
    for p in stream.encode() if flush else []:
        out.mux(p)


def write_clip(path: Path, seconds: float, *, rate: int = 12, size: tuple[int, int] = (64, 48),
               video_start: float = 0.0, audio: bool = True, audio_start: float = 0.0,
               audio_rate: int = 48000, fmt: str | None = None, sar: Fraction | None = None,
               image=picture) -> int:
    """An H.264 clip (with AAC stereo audio) whose video clock starts at `video_start` and
    audio at `audio_start` seconds. Returns the number of video frames written."""
    n = int(round(seconds * rate))
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.codec_context.time_base = Fraction(1, rate)
        if sar is not None:
            vs.codec_context.sample_aspect_ratio = sar
        aus = out.add_stream("aac", rate=audio_rate, layout="stereo") if audio else None
        first = int(round(video_start * rate))
        for i in range(n):
            f = av.VideoFrame.from_ndarray(image(i, size), format="rgb24")
            f.pts, f.time_base = first + i, Fraction(1, rate)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is not None:
            _mux_audio(out, aus, tone(seconds - audio_start, audio_rate), audio_rate, start=video_start + audio_start)
    return n


def _boxes(data: bytes, start: int, end: int):
    """(type, offset, size) of the ISO-BMFF boxes laid end to end in data[start:end]."""
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        yield kind.decode("latin-1"), i, size
        i += size


def _box(data: bytes, path: list[str], start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(offset, size) of the first box at `path` (e.g. ["moov", "trak", "tkhd"])."""
    end = len(data) if end is None else end
    for kind, off, size in _boxes(data, start, end):
        if kind == path[0]:
            return (off, size) if len(path) == 1 else _box(data, path[1:], off + 8, off + size)
    raise KeyError(path)


def rotate_mp4(path: Path, degrees: int) -> None:
    """Give the first track a display matrix turning it `degrees` clockwise, as phones do
    (ISO-BMFF tkhd matrix, 16.16 fixed point; what `ffmpeg -display_rotation` writes)."""
    data = bytearray(path.read_bytes())
    off, _ = _box(data, ["moov", "trak", "tkhd"])
    c, s = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees % 360]
    matrix = [c << 16, s << 16, 0, -s << 16, c << 16, 0, 0, 0, 1 << 30]
    data[off + 8 + 40:off + 8 + 76] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))


def write_cover_art_first(path: Path, seconds: float = 3.0, rate: int = 12) -> int:
    """An MP4 whose stream 0 is cover art (an attached picture: the `covr` box that taggers
    put in moov/udta before the tracks), then the film, then two audio tracks: a stereo
    one and a mono one marked default. Returns the film's frame count."""
    n = int(round(seconds * rate))
    with av.open(str(path), "w") as out:
        pic = out.add_stream("mjpeg", rate=1)
        pic.width, pic.height, pic.pix_fmt = 200, 300, "yuvj420p"
        pic.disposition = Disposition.attached_pic
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a1 = out.add_stream("aac", rate=48000, layout="stereo")
        a2 = out.add_stream("aac", rate=48000, layout="mono")
        a1.disposition, a2.disposition = Disposition(0), Disposition.default
        cover = av.VideoFrame.from_ndarray(np.full((300, 200, 3), 90, np.uint8), format="rgb24")
        for p in pic.encode(cover.reformat(format="yuvj420p")):
            out.mux(p)
        for p in pic.encode():
            out.mux(p)
        for i in range(n):
            for p in vs.encode(av.VideoFrame.from_ndarray(picture(i, (64, 48)), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        _mux_audio(out, a1, tone(seconds, 48000, 2, 440.0), 48000)
        _mux_audio(out, a2, tone(seconds, 48000, 1, 1000.0), 48000)
    # taggers write the cover's udta before the tracks: the demuxer then makes it stream 0
    data = path.read_bytes()
    moov, moov_size = _box(data, ["moov"])
    kids = list(_boxes(data, moov + 8, moov + moov_size))
    order = [k for k in kids if k[0] in ("mvhd", "udta")] + [k for k in kids if k[0] not in ("mvhd", "udta")]
    body = b"".join(data[off:off + size] for _, off, size in order)
    path.write_bytes(data[:moov + 8] + body + data[moov + moov_size:])
    return n


def write_float_pcm(path: Path, seconds: float = 4.0, bad: tuple[float, ...] = (np.nan, np.inf, -np.inf),
                    every: int = 5000) -> None:
    """A Matroska clip with 32-bit float PCM audio holding non-finite samples every `every`."""
    rate = 44100
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("pcm_f32le", rate=rate, layout="stereo")
        for i in range(int(seconds * 12)):
            for p in vs.encode(av.VideoFrame.from_ndarray(picture(i, (64, 48)), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        y = tone(seconds, rate)
        for k, i in enumerate(range(every, y.shape[1], every)):
            y[k % 2, i] = bad[k % len(bad)]
        _mux_audio(out, aus, y, rate, fmt="flt")


def damage(path: Path, at: float = 0.5, nbytes: int = 4000, seed: int = 0) -> None:
    """Overwrite `nbytes` of the file at `at` of its length with random bytes (inside the
    media data of an MP4 whose moov is at the end)."""
    data = bytearray(path.read_bytes())
    lo = int(len(data) * at)
    data[lo:lo + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def write_joined_ts(path: Path, seconds: float = 4.0, segments: int = 2) -> int:
    """Segments of MPEG-TS written separately and joined byte for byte (as `cat` joins
    recordings): each starts its clock again. Returns the total frame count."""
    total = b""
    n = 0
    for k in range(segments):
        part = path.with_suffix(f".{k}.ts")
        n += write_clip(part, seconds, fmt="mpegts")
        total += part.read_bytes()
        part.unlink()
    path.write_bytes(total)
    return n


def write_timed_clip(path: Path, times: list[float], *, rate: int = 24, size: tuple[int, int] = (64, 48),
                     audio_spans: list[tuple[float, float]] | None = None, fmt: str | None = None,
                     time_base: Fraction | None = None) -> None:
    """An H.264 clip whose frame k is shown at `times[k]` seconds (a variable frame rate:
    a long gap is a held frame), declared at `rate` frames a second, with AAC audio only
    over `audio_spans` ((start, end) seconds; none: no audio track). `time_base` is the
    video stream's (default 1/1000)."""
    tb = time_base or Fraction(1, 1000)
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.codec_context.time_base = tb
        vs.time_base = tb
        aus = out.add_stream("aac", rate=48000, layout="stereo") if audio_spans else None
        for k, t in enumerate(times):
            f = av.VideoFrame.from_ndarray(picture(k, size), format="rgb24")
            f.pts, f.time_base = int(round(t / tb)), tb
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        for k, (start, end) in enumerate(audio_spans or []):
            _mux_audio(out, aus, tone(end - start, 48000), 48000, start=start, flush=k == len(audio_spans) - 1)


def unknown_codec_first_audio(path: Path) -> None:
    """Make the first audio track of a Matroska file undecodable: its codec id becomes one
    FFmpeg has no decoder for (the second track stays AAC)."""
    data = path.read_bytes()
    i = data.index(b"A_AAC")
    path.write_bytes(data[:i] + b"A_ZZZ" + data[i + 5:])


def write_two_audio_tracks(path: Path, seconds: float = 4.0, rate: int = 12) -> None:
    """A Matroska clip with two AAC audio tracks (the first one default), the second at 880 Hz."""
    n = int(round(seconds * rate))
    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a1 = out.add_stream("aac", rate=48000, layout="stereo")
        a2 = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(n):
            f = av.VideoFrame.from_ndarray(picture(i, (64, 48)), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, rate)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        _mux_audio(out, a1, tone(seconds, 48000), 48000)
        _mux_audio(out, a2, tone(seconds, 48000, freq=880.0), 48000)
