"""Audio stream of the paper (section 3.3): 44.1 kHz mono, non-overlapping 3-second
windows, one 130 x 513 (time x frequency) magnitude spectrogram per window.

    y (n,) --cut--> windows of 3 s = 132,300 samples --STFT n_fft=1024, hop=1024, centred-->
      513 x (1 + 132300 // 1024) = 513 x 130 --|.|, transpose--> 130 x 513

librosa.stft is the reference (tests compare against it). The CPU path computes the same
transform one window at a time, so each window's padded signal, frames and spectrum stay in
cache, where librosa's whole-batch passes spill to memory. `spectrograms_torch` is the
torch.stft twin for GPU actors.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 44_100
WINDOW_S = 3.0
WINDOW = int(SAMPLE_RATE * WINDOW_S)        # 132,300 samples
N_FFT = 1024
HOP = 1024
FRAMES = 1 + WINDOW // HOP                  # 130 time steps
BINS = N_FFT // 2 + 1                       # 513 frequency bins
SPEC_SIZE = FRAMES * BINS                   # one window as the store keeps it: flattened, time-major


def windows(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """(n,) -> (s, WINDOW) non-overlapping windows; the tail shorter than a window is dropped.

    Audio shorter than one window becomes one zero-padded window: returns padded=True.
    """
    y = np.asarray(y, np.float32)
    s = len(y) // WINDOW
    if s == 0:
        out = np.zeros((1, WINDOW), np.float32)
        out[0, :len(y)] = y
        return out, True
    return y[:s * WINDOW].reshape(s, WINDOW), False


def hann(n: int) -> np.ndarray:
    """The periodic Hann window of librosa / scipy.signal.get_window("hann", n)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


HANN = hann(N_FFT)
FRAMES_PER_FFT = 256          # frames transformed at a time: signal, frames and spectrum stay in cache


def stft_magnitude(y: np.ndarray, n_fft: int, hop: int, out: np.ndarray | None = None) -> np.ndarray:
    """(n,) float32 -> (1 + n // hop, n_fft // 2 + 1) float32 |STFT|, time-major.

    Equal to |librosa.stft(y, n_fft, hop_length=hop, center=True, pad_mode="constant")|.T
    (periodic Hann window), computed a cache-sized block of frames at a time."""
    window = HANN if n_fft == N_FFT else hann(n_fft)
    padded = np.zeros(len(y) + n_fft, np.float32)                  # n_fft // 2 zeros either side: centred frames
    padded[n_fft // 2:n_fft // 2 + len(y)] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    if out is None:
        out = np.empty((len(frames), n_fft // 2 + 1), np.float32)
    for i in range(0, len(frames), FRAMES_PER_FFT):
        np.abs(np.fft.rfft(frames[i:i + FRAMES_PER_FFT] * window, axis=-1), out=out[i:i + FRAMES_PER_FFT])
    return out


def spectrograms(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """(n,) mono 44.1 kHz -> ((s, 130, 513) float32 magnitudes, padded).

    Equal to |librosa.stft(window, n_fft=1024, hop_length=1024, center=True,
    pad_mode="constant")|.T per window, computed time-major so no transpose copy is needed."""
    w, padded = windows(y)
    out = np.empty((len(w), FRAMES, BINS), np.float32)
    for i in range(len(w)):
        stft_magnitude(w[i], N_FFT, HOP, out=out[i])
    return out, padded


def spectrograms_torch(y, device: str = "cpu"):
    """torch.stft twin of `spectrograms` (same windows, padding and scaling): for GPU actors."""
    import torch  # lazy: decoding never needs torch; only the actors' twin does
    w, padded = windows(np.asarray(y))
    x = torch.from_numpy(w).to(device)
    S = torch.stft(x, n_fft=N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT, device=device),
                   center=True, pad_mode="constant", return_complex=True).abs()
    return S.transpose(1, 2).contiguous(), padded                                   # (s, 130, 513)
