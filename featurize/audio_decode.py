"""The audio track as it is demuxed: frames mixed to mono from the decoder's buffers, placed
on their own timeline with silence in the gaps, resampled once to 44.1 kHz, and cleaned
(finite, within full scale) before any transform sees them. `audio.py` turns the result
into spectrograms."""
from __future__ import annotations

import av
import numpy as np
import soxr

from featurize.audio import SAMPLE_RATE
from featurize.timeline import MAX_GAP_S, Timeline


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


AUDIO_GAP_S = 0.05      # audio that resumes later than this after the last samples gets silence between


PEAK = 1.0              # audio samples are clipped to [-PEAK, PEAK]: full scale


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
    a new run, resampled on its own. Frames are placed on their own `Timeline` (`max_gap`: the
    container's, `containers.clock_breaks`): wherever the container has no audio, for any
    length, silence fills the gap; `first` is the raw time of the first sample, for placing
    the track on the video's timeline."""

    def __init__(self, max_gap: float = MAX_GAP_S) -> None:
        self._runs: list[tuple[int, list[np.ndarray]]] = []
        self._rematrix: av.AudioResampler | None = None
        self.timeline = Timeline(max_gap)
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
