"""Opening a media file and choosing its streams: local paths and fsspec URLs, the stream a
player would show, and demuxing that keeps what came before damage."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import av
import fsspec
from av.stream import Disposition


@contextlib.contextmanager
def open_media(path: str) -> Iterator[av.container.InputContainer]:
    """av.open for a local path or any fsspec URL (s3://...)."""
    if "://" in path and not path.startswith("file://"):
        with fsspec.open(path, "rb") as fh, av.open(fh) as container:
            yield container
    else:
        with av.open(path.removeprefix("file://")) as container:
            yield container


# Containers whose clock can break inside one file: MPEG transport and program streams
# (discontinuities, the 33-bit wrap-around, joined recordings), raw elementary streams, and
# FFmpeg's concat and HLS demuxers (segments). Every other container (MP4, MOV, Matroska,
# WebM, AVI...) keeps one continuous clock: its timestamps are trusted, long holds and gaps
# included (`timeline.Timeline`).
CLOCK_BREAKS = {"mpegts", "mpeg", "mpegvideo", "h264", "hevc", "concat", "hls", "applehttp"}


def clock_breaks(container) -> bool:
    return bool(set(container.format.name.split(",")) & CLOCK_BREAKS)


def decodable(stream) -> bool:
    """FFmpeg has a decoder for it (a codec it does not know leaves no codec context)."""
    try:
        return stream.codec_context is not None
    except Exception:                  # noqa: BLE001  (PyAV raises on some unknown codecs)
        return False


def _is(stream, flag: Disposition) -> bool:
    return bool(int(stream.disposition) & int(flag))


def choose_stream(streams, best):
    """The stream a player would show: never an attached picture (cover art, thumbnails) nor
    one FFmpeg cannot decode; among the rest, one marked default, FFmpeg's own best choice
    (`av_find_best_stream`: most decoded frames, then bit rate) first. None when no stream
    is left."""
    usable = [s for s in streams if not _is(s, Disposition.attached_pic) and decodable(s)]
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


def packets(container, streams, damage: Damage):
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


def seconds(frame: av.frame.Frame, time_base: float | None) -> float | None:
    """A decoded frame's presentation time in seconds, from its stream's time base as a float
    (frames drained from a decoder at the end of a file carry no time base of their own)."""
    return None if frame.pts is None or time_base is None else frame.pts * time_base
