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


# The periodic Hann window of librosa / scipy.signal.get_window("hann", N_FFT).
HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def spectrograms(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """(n,) mono 44.1 kHz -> ((s, 130, 513) float32 magnitudes, padded).

    Equal to |librosa.stft(window, n_fft=1024, hop_length=1024, center=True,
    pad_mode="constant")|.T per window, computed time-major so no transpose copy is needed."""
    w, padded = windows(y)
    out = np.empty((len(w), FRAMES, BINS), np.float32)
    buf = np.zeros(WINDOW + N_FFT, np.float32)               # N_FFT // 2 zeros either side: centred frames
    frames = np.lib.stride_tricks.sliding_window_view(buf, N_FFT)[::HOP]       # (130, 1024) view of buf
    for i in range(len(w)):
        buf[N_FFT // 2:N_FFT // 2 + WINDOW] = w[i]
        np.abs(np.fft.rfft(frames * HANN, axis=-1), out=out[i])
    return out, padded


def spectrograms_torch(y, device: str = "cpu"):
    """torch.stft twin of `spectrograms` (same windows, padding and scaling): for GPU actors."""
    import torch
    w, padded = windows(np.asarray(y))
    x = torch.from_numpy(w).to(device)
    S = torch.stft(x, n_fft=N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT, device=device),
                   center=True, pad_mode="constant", return_complex=True).abs()
    return S.transpose(1, 2).contiguous(), padded                                   # (s, 130, 513)
