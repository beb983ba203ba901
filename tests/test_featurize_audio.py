import av
import librosa
import numpy as np
import pytest

from featurize.config import FeaturizeConfig
from featurize import audio, lowlevel
from featurize.extract import decode


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
    d = decode(str(tmp_path / "a.mp4"), FeaturizeConfig())
    assert d.sample_rate == 48000 and d.audio_codec == "aac"
    assert d.audio.ndim == 1 and len(d.audio) == pytest.approx(4.0 * audio.SAMPLE_RATE, rel=0.02)
    spectrum = np.abs(np.fft.rfft(d.audio[10000:10000 + 44100]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)       # 1-Hz bins over one second


def test_constant_colour_video_has_no_colour_variance_and_no_motion(tmp_path):
    _write(tmp_path / "c.mp4", 2.0, with_audio=False)
    d = decode(str(tmp_path / "c.mp4"), FeaturizeConfig())
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
    sr = audio.SAMPLE_RATE
    y = _music(5.0)
    y[2000:6000] = 0.0                          # silence: empty frames and exact zeros
    y[9000:9100] = 1e-12                        # below librosa's zero-crossing threshold
    np.testing.assert_array_equal(lowlevel.zero_crossing_rate(y),
                                  librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)[0])
    np.testing.assert_array_equal(lowlevel.zero_crossing_rate(y, 2048, 1024),
                                  librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=1024)[0])
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=1024))
    S[:, :3] = 0.0                              # silent frames
    freqs = librosa.fft_frequencies(sr=sr, n_fft=1024)
    np.testing.assert_allclose(lowlevel.spectral_centroid(S, freqs),
                               librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=1024)[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(lowlevel.spectral_rolloff(S, freqs),
                                  librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=1024)[0])


def test_audio_descriptors_named_and_finite():
    d = lowlevel.audio_descriptors(_music(6.0))
    assert d.shape == (len(lowlevel.AUDIO_NAMES),) and np.isfinite(d).all()
    named = dict(zip(lowlevel.AUDIO_NAMES, d))
    assert 60 < named["tempo"] < 300 and named["rms_mean"] > 0
    assert not lowlevel.audio_descriptors(None).any()


def _librosa_descriptors(y):
    """The AV audio descriptors written with librosa alone, over the whole-window spectrograms
    (3-s windows, n_fft = hop = 1024 at 44.1 kHz): the definition."""
    sr, hop = audio.SAMPLE_RATE, 1024
    whole = len(y) // audio.WINDOW * audio.WINDOW
    S = np.concatenate([np.abs(librosa.stft(w, n_fft=1024, hop_length=hop, pad_mode="constant"))
                        for w in y[:whole].reshape(-1, audio.WINDOW)], axis=1)
    flux = librosa.onset.onset_strength(S=librosa.amplitude_to_db(S, ref=np.max), sr=sr, hop_length=hop)
    per_frame = [librosa.feature.rms(S=S, frame_length=1024)[0],
                 librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=1024)[0],
                 librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=1024)[0], flux]
    contrast = librosa.feature.spectral_contrast(S=S, sr=sr, n_fft=1024, hop_length=hop, n_bands=lowlevel.N_CONTRAST - 1)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=hop)[0]
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=flux, sr=sr, hop_length=hop))[0])
    mel = librosa.feature.melspectrogram(S=S ** 2, sr=sr, n_fft=1024, n_mels=lowlevel.N_MELS)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=lowlevel.N_MFCC)
    out = [f(x) for x in per_frame for f in (np.mean, np.std)]
    out += [*contrast.mean(1), *contrast.std(1), zcr.mean(), zcr.std(), tempo, *mfcc.mean(1), *mfcc.std(1)]
    return dict(zip(lowlevel.AUDIO_NAMES, np.asarray(out, np.float32)))


def test_audio_descriptors_equal_librosa():
    """Descriptors read from the pipeline's spectrograms (sparse mel projection, compiled
    roll-off) give librosa's values over the same STFT frames."""
    y = _music(12.0, seed=3)
    y[50_000:90_000] = 0.0                                   # a silent stretch
    got = dict(zip(lowlevel.AUDIO_NAMES, lowlevel.audio_descriptors(y, audio.spectrograms(y)[0])))
    assert got == dict(zip(lowlevel.AUDIO_NAMES, lowlevel.audio_descriptors(y)))
    ref = _librosa_descriptors(y)
    for name, want in ref.items():
        assert got[name] == pytest.approx(want, rel=2e-4, abs=1e-3), name


def test_stft_magnitude_equals_librosa():
    y = _music(2.3, seed=4)
    for n_fft, hop in ((2048, 512), (1024, 1024), (512, 384)):
        ref = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, pad_mode="constant")).T
        got = audio.stft_magnitude(y, n_fft, hop)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def _encode_audio(path, layout, rate, codec="aac", seconds=2.0):
    channels = len(av.AudioLayout(layout).channels)
    t = np.arange(int(seconds * rate)) / rate
    y = np.stack([0.2 * np.sin(2 * np.pi * 220 * (k + 1) * t) for k in range(channels)]).astype(np.float32)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=rate, layout=layout)
        for i in range(0, y.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, i:i + 1024]), format="fltp", layout=layout)
            f.sample_rate, f.pts = rate, i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.mark.parametrize("layout,rate,codec", [("stereo", 44100, "aac"), ("stereo", 48000, "aac"),
                                               ("mono", 22050, "aac"), ("5.1", 44100, "aac"),
                                               ("stereo", 32000, "pcm_s16le")])
def test_audio_track_mixes_like_ffmpeg(tmp_path, layout, rate, codec):
    """AudioTrack (mix from the decoder's buffers, one resampling at the end) against
    FFmpeg's resampler frame by frame, the way every frame used to be converted."""
    from featurize.audio_decode import AudioTrack
    path = tmp_path / ("a.wav" if codec.startswith("pcm") else "a.mp4")
    _encode_audio(path, layout, rate, codec)
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    resampler = av.AudioResampler(format="flt", layout="mono", rate=audio.SAMPLE_RATE)
    ref = np.concatenate([o.to_ndarray().reshape(-1) for f in frames + [None] for o in resampler.resample(f)])
    track = AudioTrack()
    for f in frames:
        track.push(f)
    got = track.finish()
    assert got.dtype == np.float32 and len(got) == pytest.approx(len(ref), abs=2)
    n = min(len(got), len(ref))
    inner = slice(2000, n - 2000)                            # the resamplers' edge transients differ
    np.testing.assert_allclose(got[inner], ref[inner], atol=1e-4 if rate != audio.SAMPLE_RATE else 1e-6)
    assert np.sqrt(np.mean(got ** 2)) > 0.1


def test_short_audio_descriptors_use_only_frames_with_sound():
    y = _music(1.0, seed=6)
    named = dict(zip(lowlevel.AUDIO_NAMES, lowlevel.audio_descriptors(y)))
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=1024, pad_mode="constant"))      # 1 + n // 1024 frames
    assert named["rms_mean"] == pytest.approx(librosa.feature.rms(S=S, frame_length=1024)[0].mean(), rel=1e-4)
    assert np.isfinite(list(named.values())).all()


def test_tempo_equals_librosa():
    """The mean tempogram taken with one inverse FFT gives librosa's tempo estimate."""
    rng = np.random.default_rng(7)
    sr, hop = audio.SAMPLE_RATE, audio.HOP
    t = np.arange(900) * hop / sr
    envelopes = [rng.random(1500).astype(np.float32), rng.random(120),
                 np.maximum(np.sin(2 * np.pi * 2.2 * t), 0) ** 8 + 0.05 * rng.random(900),   # 132 BPM pulses
                 np.zeros(400, np.float32)]
    envelopes[2][:300] = 0.0                                                                # silence first
    for flux in envelopes:
        want = float(librosa.feature.tempo(onset_envelope=flux, sr=sr, hop_length=hop)[0])
        assert lowlevel.tempo(flux, sr, hop) == want
    assert abs(lowlevel.tempo(envelopes[2], sr, hop) - 132) < 4
