"""Low-level features of the baselines (paper section 4.2): VLLF and AV, one vector per trailer.

VLLF (Rasheed et al.): average shot length, colour variance (determinant of the CIE Luv
covariance of a keyframe's pixels, averaged over keyframes), lighting key (mean and
standard deviation of HSV value over keyframe pixels) and motion content (share of
pixels that change between consecutive frames). AV adds audio descriptors computed
with librosa: intensity (RMS), timbre and spectral shape (centroid, rolloff, flux,
contrast, zero crossings), rhythm (tempo) and MFCC statistics.
"""
from __future__ import annotations

import numpy as np

from featurize.shots import rgb_to_hsv

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
AUDIO_FEATURE_RATE = 22_050     # descriptors need no more bandwidth than this
KEYFRAME_STEP = 4               # colour statistics from every 4th pixel of each keyframe (64 x 64 of 256 x 256)

# sRGB (D65) -> CIE XYZ, and the white point for Luv.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], np.float64)
_WHITE = _RGB_TO_XYZ.sum(1)


def rgb_to_luv(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) sRGB -> float64 (..., 3) CIE L*u*v* (D65)."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.T
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
    cov = np.einsum("tni,tnj->tij", d, d) / max(d.shape[1] - 1, 1)
    return np.maximum(np.linalg.det(cov), 0.0)


class MotionMeter:
    """Running share of active pixels between consecutive (thumbnail) frames: luma samples
    (h, w) uint8, or RGB (h, w, 3) uint8 averaged to grey."""

    def __init__(self, threshold: float = MOTION_THRESHOLD):
        self.threshold = threshold
        self._prev: np.ndarray | None = None
        self._sum, self._n = 0.0, 0

    def push(self, img: np.ndarray) -> None:
        grey = img if img.ndim == 2 else np.rint(img.mean(-1))
        self.push_many(grey.reshape(1, -1))

    def push_many(self, lumas: np.ndarray) -> None:
        """(frames, pixels) luma samples of consecutive frames."""
        if len(lumas) == 0:
            return
        grey = lumas.astype(np.int16)
        both = grey if self._prev is None or self._prev.shape != grey.shape[1:] else np.concatenate([self._prev[None], grey])
        if len(both) > 1:
            active = np.count_nonzero(np.abs(both[1:] - both[:-1]) > self.threshold * 255, axis=1)
            for a in active.tolist():
                self._sum += a / grey.shape[1]
            self._n += len(active)
        self._prev = grey[-1]

    @property
    def value(self) -> float:
        return self._sum / self._n if self._n else 0.0


def vllf(keyframes: np.ndarray, shot_lengths_s: np.ndarray, motion: float) -> np.ndarray:
    """(t, H, W, 3) uint8 keyframes -> the VLLF vector, in VLLF_NAMES order."""
    if len(keyframes) == 0:
        return np.zeros(len(VLLF_NAMES), np.float32)
    grid = keyframes[:, ::KEYFRAME_STEP, ::KEYFRAME_STEP]
    _, _, v = rgb_to_hsv(grid)
    return np.array([
        float(np.mean(shot_lengths_s)) if len(shot_lengths_s) else 0.0,
        float(np.mean(color_variances(grid))),
        float(v.mean()), float(v.std()), motion,
    ], np.float32)


def zero_crossing_rate(y: np.ndarray, frame_length: int = 2048, hop_length: int = 512,
                       threshold: float = 1e-10) -> np.ndarray:
    """librosa.feature.zero_crossing_rate (centred, edge-padded, |y| <= threshold counts as
    zero, zero as positive) from one running count of sign changes instead of a framed copy."""
    yp = np.pad(np.asarray(y), frame_length // 2, mode="edge")
    neg = yp < -threshold
    changes = np.concatenate([[0], np.cumsum(neg[1:] != neg[:-1])])
    starts = np.arange(0, len(yp) - frame_length + 1, hop_length)
    return (changes[starts + frame_length - 1] - changes[starts]) / frame_length


def spectral_centroid(S: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """librosa.feature.spectral_centroid of a magnitude spectrogram (bins, frames)."""
    total = S.sum(0)
    return np.where(total > np.finfo(S.dtype).tiny, (freqs @ S) / np.where(total > 0, total, 1), 0.0)


def spectral_rolloff(S: np.ndarray, freqs: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    """librosa.feature.spectral_rolloff: the lowest frequency under which `roll_percent` of
    each frame's magnitude lies."""
    cum = np.cumsum(S, 0)
    return freqs[np.argmax(cum >= roll_percent * cum[-1], 0)]


def audio_descriptors(y: np.ndarray | None, sr: int) -> np.ndarray:
    """Mono audio -> the descriptors in AUDIO_NAMES order (zeros when there is no audio)."""
    if y is None or len(y) < 2048:
        return np.zeros(len(AUDIO_NAMES), np.float32)
    import librosa
    if sr != AUDIO_FEATURE_RATE:
        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=AUDIO_FEATURE_RATE, res_type="soxr_mq")
        sr = AUDIO_FEATURE_RATE
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    rms = librosa.feature.rms(S=S)[0]
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2048)
    centroid = spectral_centroid(S, freqs)
    rolloff = spectral_rolloff(S, freqs)
    flux = librosa.onset.onset_strength(S=librosa.amplitude_to_db(S, ref=np.max), sr=sr)
    contrast = librosa.feature.spectral_contrast(S=S, sr=sr, n_bands=N_CONTRAST - 1)
    zcr = zero_crossing_rate(y, frame_length=2048, hop_length=512)
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=flux, sr=sr))[0])
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=S ** 2, sr=sr)), n_mfcc=N_MFCC)
    out = [f(x) for x in (rms, centroid, rolloff, flux) for f in (np.mean, np.std)]
    out += list(contrast.mean(1)) + list(contrast.std(1))
    out += [zcr.mean(), zcr.std(), tempo]
    out += list(mfcc.mean(1)) + list(mfcc.std(1))
    return np.nan_to_num(np.asarray(out, np.float32))
