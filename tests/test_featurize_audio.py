import av
import librosa
import numpy as np
import pytest

from ctt.config import FeaturizeConfig
from featurize import audio, lowlevel
from featurize.video import decode_trailer


def _music(seconds, sr=audio.SAMPLE_RATE, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f * t) * a for f, a in ((220, 0.3), (440, 0.2), (1760, 0.05)))
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 8) + 0.02 * rng.normal(size=len(t))
    return y.astype(np.float32)


def test_spectrogram_shape_and_values_against_librosa():
    y = _music(7.5)
    S, padded = audio.spectrograms(y)
    assert S.shape == (2, 130, 513) and not padded                 # 7.5 s: two whole 3-s windows
    for i in range(2):
        ref = np.abs(librosa.stft(y[i * audio.WINDOW:(i + 1) * audio.WINDOW], n_fft=1024, hop_length=1024,
                                  pad_mode="constant")).T
        np.testing.assert_allclose(S[i], ref, rtol=1e-5, atol=1e-5)


def test_torch_stft_agrees_with_librosa():
    y = _music(9.2, seed=1)
    S, _ = audio.spectrograms(y)
    T, _ = audio.spectrograms_torch(y)
    err = np.linalg.norm(T.numpy() - S) / np.linalg.norm(S)
    assert T.shape == S.shape and err < 1e-3


def test_short_audio_is_one_padded_window():
    S, padded = audio.spectrograms(_music(1.0))
    assert S.shape == (1, 130, 513) and padded
    assert S[0, 60:].max() < 1e-3 < S[0, :40].max()                 # sound in the first second only


def _write(path, seconds, with_audio=True, colour=(200, 30, 30), size=(64, 48), rate=12, audio_rate=48000):
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        aus = out.add_stream("aac", rate=audio_rate, layout="stereo") if with_audio else None
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:] = colour
        for _ in range(int(seconds * rate)):
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is not None:
            t = np.arange(int(seconds * audio_rate)) / audio_rate
            y = np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
            for i in range(0, y.shape[1], 1024):
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, i:i + 1024]), format="fltp", layout="stereo")
                f.sample_rate, f.pts = audio_rate, i
                for p in aus.encode(f):
                    out.mux(p)
            for p in aus.encode():
                out.mux(p)


def test_decode_resamples_audio_to_44k_mono(tmp_path):
    _write(tmp_path / "a.mp4", 4.0)
    d = decode_trailer(str(tmp_path / "a.mp4"), FeaturizeConfig())
    assert d.sample_rate == 48000 and d.audio_codec == "aac"
    assert d.audio.ndim == 1 and len(d.audio) == pytest.approx(4.0 * audio.SAMPLE_RATE, rel=0.02)
    spectrum = np.abs(np.fft.rfft(d.audio[10000:10000 + 44100]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)       # 1-Hz bins over one second


def test_constant_colour_video_has_no_colour_variance_and_no_motion(tmp_path):
    _write(tmp_path / "c.mp4", 2.0, with_audio=False)
    d = decode_trailer(str(tmp_path / "c.mp4"), FeaturizeConfig())
    assert d.audio is None and len(d.keyframes) == 1
    v = dict(zip(lowlevel.VLLF_NAMES, lowlevel.vllf(d.keyframes, d.shot_lengths_s, d.motion)))
    assert v["color_variance"] == pytest.approx(0, abs=1e-3) and v["motion_content"] == 0
    assert v["avg_shot_length_s"] == pytest.approx(2.0, abs=0.1)
    assert v["lighting_key_std"] == pytest.approx(0, abs=0.01)
    assert v["lighting_key_mean"] == pytest.approx(200 / 255, abs=0.03)   # HSV value = max channel


def test_luv_against_known_values():
    luv = lowlevel.rgb_to_luv(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8))
    np.testing.assert_allclose(luv[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(luv[1], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(luv[2], [53.24, 175.01, 37.76], atol=0.1)   # sRGB red in L*u*v*


def test_motion_meter_counts_active_pixels():
    m = lowlevel.MotionMeter()
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:5] = 255                  # half the pixels change
    for img in (a, b, b):
        m.push(img)
    assert m.value == pytest.approx(0.25)


def test_direct_descriptors_match_librosa():
    sr = lowlevel.AUDIO_FEATURE_RATE
    y = librosa.resample(_music(5.0), orig_sr=audio.SAMPLE_RATE, target_sr=sr)
    y[2000:6000] = 0.0                          # silence: empty frames and exact zeros
    y[9000:9100] = 1e-12                        # below librosa's zero-crossing threshold
    np.testing.assert_array_equal(lowlevel.zero_crossing_rate(y),
                                  librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)[0])
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    S[:, :3] = 0.0                              # silent frames
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2048)
    np.testing.assert_allclose(lowlevel.spectral_centroid(S, freqs),
                               librosa.feature.spectral_centroid(S=S, sr=sr)[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(lowlevel.spectral_rolloff(S, freqs), librosa.feature.spectral_rolloff(S=S, sr=sr)[0])


def test_audio_descriptors_named_and_finite():
    d = lowlevel.audio_descriptors(_music(6.0), audio.SAMPLE_RATE)
    assert d.shape == (len(lowlevel.AUDIO_NAMES),) and np.isfinite(d).all()
    named = dict(zip(lowlevel.AUDIO_NAMES, d))
    assert 60 < named["tempo"] < 300 and named["rms_mean"] > 0
    assert not lowlevel.audio_descriptors(None, 44100).any()
