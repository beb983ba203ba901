"""Low-level features of the baselines (paper section 4.2): VLLF and AV, one vector per trailer.

VLLF (Rasheed et al.): average shot length, colour variance (determinant of the CIE Luv
covariance of a keyframe's pixels, averaged over keyframes), lighting key (mean and
standard deviation of HSV value over keyframe pixels) and motion content (share of
pixels that change between consecutive frames). AV adds audio descriptors with
librosa's definitions: intensity (RMS), timbre and spectral shape (centroid, rolloff,
flux, contrast, zero crossings), rhythm (tempo) and MFCC statistics, all read from the
44.1 kHz magnitude spectrograms the audio stream already has (n_fft 1024, hop 1024:
43 frames a second, 43 Hz bins), so the decode task takes one STFT, not two.
"""
from __future__ import annotations

import functools

import librosa
import numba
import numpy as np
import scipy.fft
import scipy.signal
import scipy.sparse

from featurize import audio


VLLF_NAMES = ("avg_shot_length_s", "color_variance", "lighting_key_mean", "lighting_key_std", "motion_content")
N_MFCC = 13
N_CONTRAST = 7
AUDIO_NAMES = tuple(
    [f"{name}_{stat}" for name in ("rms", "centroid", "rolloff", "flux") for stat in ("mean", "std")]
    + [f"contrast{i}_{stat}" for stat in ("mean", "std") for i in range(N_CONTRAST)]
    + ["zcr_mean", "zcr_std", "tempo"]
    + [f"mfcc{i}_{stat}" for stat in ("mean", "std") for i in range(N_MFCC)]
)
AV_NAMES = VLLF_NAMES + AUDIO_NAMES
MOTION_THRESHOLD = 0.1          # |grey difference| above 10% of full scale: an "active" pixel
N_MELS = 40                     # mel bands for the MFCCs: more would leave low bands empty at 43 Hz resolution
ZCR_FRAME = 2048                # zero-crossing rate over 46 ms frames, one per spectrogram frame
KEYFRAME_STEP = 4               # colour statistics from every 4th pixel of each keyframe (64 x 64 of 256 x 256)

# sRGB (D65) -> CIE XYZ, and the white point for Luv.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], np.float64)
_WHITE = _RGB_TO_XYZ.sum(1)
_C = np.arange(256) / 255.0
_SRGB_LINEAR = np.where(_C <= 0.04045, _C / 12.92, ((_C + 0.055) / 1.055) ** 2.4)    # sRGB decoding of each 8-bit value


def rgb_to_luv(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) sRGB -> float64 (..., 3) CIE L*u*v* (D65)."""
    xyz = _SRGB_LINEAR[rgb] @ _RGB_TO_XYZ.T
    X, Y, Z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    yr = Y / _WHITE[1]
    L = np.where(yr > (6 / 29) ** 3, 116 * np.cbrt(yr) - 16, (29 / 3) ** 3 * yr)
    den = X + 15 * Y + 3 * Z
    safe = np.where(den > 0, den, 1.0)
    up = np.where(den > 0, 4 * X / safe, 0.0)
    vp = np.where(den > 0, 9 * Y / safe, 0.0)
    wden = _WHITE[0] + 15 * _WHITE[1] + 3 * _WHITE[2]
    un, vn = 4 * _WHITE[0] / wden, 9 * _WHITE[1] / wden
    return np.stack([L, 13 * L * (up - un), 13 * L * (vp - vn)], -1)


def color_variances(keyframes: np.ndarray) -> np.ndarray:
    """(t, H, W, 3) uint8 -> (t,): det of the 3x3 covariance of each keyframe's Luv pixels
    (0 for a constant colour), all keyframes at once."""
    luv = rgb_to_luv(keyframes).reshape(len(keyframes), -1, 3)
    d = luv - luv.mean(1, keepdims=True)
    cov = np.matmul(d.transpose(0, 2, 1), d) / max(d.shape[1] - 1, 1)
    return np.maximum(np.linalg.det(cov), 0.0)


@numba.njit(cache=True, nogil=True)
def _active_pixels(prev: np.ndarray, lumas: np.ndarray, threshold: float, out: np.ndarray) -> None:
    """out[f]: pixels whose luma moved by more than `threshold` from the frame before
    (`prev` before the first).

    prev: (pixels,) uint8; lumas: (frames, pixels) uint8 luma samples of consecutive frames;
    threshold in luma levels (0-255); out: (frames,) int64. Equal to the NumPy count
    (|a - b| > threshold).sum() (test_compiled_histograms_and_motion_equal_their_definitions)."""
    for f in range(lumas.shape[0]):
        before = prev if f == 0 else lumas[f - 1]
        k = 0
        for i in range(lumas.shape[1]):
            k += abs(np.int32(lumas[f, i]) - np.int32(before[i])) > threshold
        out[f] = k


class MotionMeter:
    """Running share of active pixels between consecutive (thumbnail) frames: luma samples
    (h, w) uint8, or RGB (h, w, 3) uint8 averaged to grey."""

    def __init__(self, threshold: float = MOTION_THRESHOLD):
        self.threshold = threshold
        self._prev: np.ndarray | None = None
        self._sum, self._n = 0.0, 0

    def push(self, img: np.ndarray) -> None:
        grey = img if img.ndim == 2 else np.rint(img.mean(-1)).astype(np.uint8)
        self.push_many(grey.reshape(1, -1))

    def push_many(self, lumas: np.ndarray) -> None:
        """(frames, pixels) uint8 luma samples of consecutive frames."""
        if len(lumas) == 0:
            return
        lumas = np.ascontiguousarray(lumas, np.uint8)
        if self._prev is None or self._prev.shape != lumas.shape[1:]:
            self._prev, lumas = lumas[0].copy(), lumas[1:]   # the first frame (of a new size) has no motion yet
        active = np.empty(len(lumas), np.int64)
        _active_pixels(self._prev, lumas, self.threshold * 255, active)
        for a in active.tolist():
            self._sum += a / lumas.shape[1]
        self._n += len(active)
        if len(lumas):
            self._prev = lumas[-1].copy()

    @property
    def value(self) -> float:
        return self._sum / self._n if self._n else 0.0


def vllf(keyframes: np.ndarray, shot_lengths_s: np.ndarray, motion: float) -> np.ndarray:
    """(t, H, W, 3) uint8 keyframes -> the VLLF vector, in VLLF_NAMES order."""
    if len(keyframes) == 0:
        return np.zeros(len(VLLF_NAMES), np.float32)
    grid = keyframes[:, ::KEYFRAME_STEP, ::KEYFRAME_STEP]
    v = np.maximum(np.maximum(grid[..., 0], grid[..., 1]), grid[..., 2]) * np.float32(1 / 255)   # HSV value
    return np.array([
        float(np.mean(shot_lengths_s)) if len(shot_lengths_s) else 0.0,
        float(np.mean(color_variances(grid))),
        float(v.mean()), float(v.std()), motion,
    ], np.float32)


@numba.njit(cache=True, nogil=True)
def _zero_crossings(y: np.ndarray, frame_length: int, hop: int, threshold: float, out: np.ndarray) -> None:
    """out[f] = the share of sign changes within frame f of the signal.

    Frames are `frame_length` samples, centred on f * hop; samples beyond either end repeat
    the edge sample (librosa's centred, edge-padded framing), read by clamped index rather
    than copied. A sample counts as negative below -threshold (|y| <= threshold is zero,
    zero is positive), as librosa.feature.zero_crossing_rate counts; equal to it exactly
    (test_direct_descriptors_match_librosa). y: (n,) float32; out: (frames,) float64.
    """
    n, half = len(y), frame_length // 2
    for f in range(len(out)):
        start = f * hop - half                      # centred frames over an edge-padded signal
        prev = y[min(max(start, 0), n - 1)] < -threshold
        k = 0
        for j in range(start + 1, start + frame_length):
            cur = y[min(max(j, 0), n - 1)] < -threshold
            k += cur != prev
            prev = cur
        out[f] = k / frame_length


def zero_crossing_rate(y: np.ndarray, frame_length: int = 2048, hop_length: int = 512,
                       threshold: float = 1e-10) -> np.ndarray:
    """librosa.feature.zero_crossing_rate (centred, edge-padded, |y| <= threshold counts as
    zero, zero as positive), counted in one compiled pass: no padded, framed or cumulative
    copies of the signal."""
    y = np.ascontiguousarray(y)
    out = np.empty(1 + len(y) // hop_length if frame_length % 2 == 0 else 1 + (len(y) - 1) // hop_length, np.float64)
    _zero_crossings(y, frame_length, hop_length, threshold, out)
    return out


def spectral_centroid(S: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """librosa.feature.spectral_centroid of a magnitude spectrogram (bins, frames)."""
    total = S.sum(0)
    return np.where(total > np.finfo(S.dtype).tiny, (freqs @ S) / np.where(total > 0, total, 1), 0.0)


@numba.njit(cache=True, nogil=True)
def _rolloff_bins(S: np.ndarray, roll_percent: float, out: np.ndarray) -> None:
    """out[t] = the first frequency bin where the running sum of frame t's magnitudes reaches
    `roll_percent` of its total.

    S: (bins, frames) float32 magnitudes; the sums are float32, accumulated in bin order as
    librosa's cumsum is, so the bins are exactly librosa.feature.spectral_rolloff's
    (test_direct_descriptors_match_librosa). out: (frames,) intp, left as is for a silent frame.
    """
    for t in range(S.shape[1]):
        total = np.float32(0.0)
        for f in range(S.shape[0]):
            total += S[f, t]
        threshold = np.float32(roll_percent) * total
        acc = np.float32(0.0)
        for f in range(S.shape[0]):
            acc += S[f, t]
            if acc >= threshold:
                out[t] = f
                break


def spectral_rolloff(S: np.ndarray, freqs: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    """librosa.feature.spectral_rolloff: the lowest frequency under which `roll_percent` of
    each frame's magnitude lies (the same float32 running sums, without a cumsum array)."""
    S = np.asarray(S, np.float32)
    out = np.zeros(S.shape[1], np.intp)
    _rolloff_bins(S, roll_percent, out)
    return freqs[out]


def tempo(onset_envelope: np.ndarray, sr: int, hop_length: int, ac_size: float = 8.0) -> float:
    """librosa.feature.tempo (mean tempogram, log-normal prior around 120 BPM), with the
    mean tempogram taken in the frequency domain: each frame's autocorrelation, divided by
    its lag-0 value, is the inverse FFT of its power spectrum over its energy, so the mean
    over frames needs one inverse FFT instead of one per frame."""
    win = int(librosa.time_to_frames(ac_size, sr=sr, hop_length=hop_length))
    n = len(onset_envelope)
    padded = np.pad(onset_envelope, win // 2, mode="linear_ramp", end_values=[0, 0])
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[:n]              # (n, win)
    x = frames * scipy.signal.get_window("hann", win, fftbins=True)
    n_pad = scipy.fft.next_fast_len(2 * win - 1, real=True)
    power = np.square(np.abs(scipy.fft.rfft(x, n=n_pad, axis=-1)))
    # Parseval: the full spectrum's energy, sum_k |X_k|^2, is n_pad * sum_t x_t^2, i.e. n_pad times
    # the lag-0 autocorrelation. rfft keeps bins 0 .. n_pad // 2; every other bin stands twice in
    # the full spectrum, so count them twice and take back bin 0 (and the Nyquist bin for even n_pad).
    energy = power.sum(-1) * 2 - power[:, 0] - (power[:, -1] if n_pad % 2 == 0 else 0)
    scale = np.where(energy / n_pad >= np.finfo(np.float64).tiny, n_pad / np.where(energy > 0, energy, 1), 1.0)
    mean_ac = scipy.fft.irfft((power * scale[:, None]).mean(0), n=n_pad)[:win]
    return float(librosa.feature.tempo(sr=sr, hop_length=hop_length, tg=mean_ac[:, None], aggregate=None)[0])


@functools.lru_cache(maxsize=4)
def _mel_basis(sr: int, n_fft: int) -> "scipy.sparse.csr_matrix":
    """librosa's mel filter bank, sparse: each filter covers a few bins, so the projection
    costs a hundredth of the dense product."""
    return scipy.sparse.csr_matrix(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=N_MELS))


def audio_descriptors(y: np.ndarray | None, S: np.ndarray | None = None) -> np.ndarray:
    """Mono 44.1 kHz audio and its spectrograms (s, 130, 513) from `audio.spectrograms`
    (computed when not given) -> the descriptors in AUDIO_NAMES order; zeros without audio.

    The windows' frames, concatenated, are the STFT the descriptors read (librosa's
    functions on a (bins, frames) view that is contiguous along frequency); a padded
    single window is cut to the frames that hold sound."""
    if y is None or len(y) < ZCR_FRAME:
        return np.zeros(len(AUDIO_NAMES), np.float32)
    y = np.asarray(y, np.float32)
    if S is None:
        S = audio.spectrograms(y)[0]
    sr, hop, n_fft = audio.SAMPLE_RATE, audio.HOP, audio.N_FFT
    S = S.reshape(-1, audio.BINS).T                                # (513, frames)
    if len(y) < audio.WINDOW:                                       # one zero-padded window
        S = S[:, :1 + len(y) // hop]
    rms = librosa.feature.rms(S=S, frame_length=n_fft)[0]
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft).astype(np.float32)
    centroid = spectral_centroid(S, freqs)
    rolloff = spectral_rolloff(S, freqs)
    flux = librosa.onset.onset_strength(S=librosa.amplitude_to_db(S, ref=np.max), sr=sr, hop_length=hop)
    contrast = librosa.feature.spectral_contrast(S=S, sr=sr, n_fft=n_fft, hop_length=hop, n_bands=N_CONTRAST - 1)
    zcr = zero_crossing_rate(y, frame_length=ZCR_FRAME, hop_length=hop)
    bpm = tempo(flux, sr, hop)
    mel = np.asarray(_mel_basis(sr, n_fft) @ np.square(S))
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC)
    out = [f(x) for x in (rms, centroid, rolloff, flux) for f in (np.mean, np.std)]
    out += list(contrast.mean(1)) + list(contrast.std(1))
    out += [zcr.mean(), zcr.std(), bpm]
    out += list(mfcc.mean(1)) + list(mfcc.std(1))
    return np.nan_to_num(np.asarray(out, np.float32))
