"""Nothing lost, nothing redone: hostile inputs, exactly-once accounting, resume after a kill."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from tests import media
from tests.conftest import TINY
from tests.test_featurize_audio import _write

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _audio_only(path, seconds=2.0, rate=44100):
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=rate, layout="mono")
        y = (0.2 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
        for i in range(0, len(y), 1024):
            f = av.AudioFrame.from_ndarray(y[None, i:i + 1024], format="fltp", layout="mono")
            f.sample_rate, f.pts = rate, i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Each input with the table it must end in."""
    d = tmp_path_factory.mktemp("hostile")
    _write(d / "good.mp4", 4.0)
    good = (d / "good.mp4").read_bytes()
    (d / "zero.mp4").write_bytes(b"")
    (d / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (d / "text.mp4").write_text("definitely not a video\n" * 50)
    bad = bytearray(good)
    rng = np.random.default_rng(0)
    lo = len(bad) // 3
    bad[lo:lo + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (d / "corrupt_middle.mp4").write_bytes(bytes(bad))
    _write(d / "no_audio.mp4", 3.0, with_audio=False)
    _audio_only(d / "audio_only.mp4")
    _write(d / "one_frame.mp4", 1 / 12)
    _write(d / "half_second.mp4", 0.5)
    _write(d / "tiny.mp4", 2.0, size=(16, 16))
    _write(d / "my trailer – été.mp4", 3.5)
    with av.open(str(d / "vp9.webm"), "w") as out:                       # another container/codec pair
        s = out.add_stream("libvpx-vp9", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(24):
            img = np.full((48, 64, 3), (i * 10) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    media.write_clip(d / "damaged.mp4", 6.0)
    media.damage(d / "damaged.mp4", at=0.5, nbytes=4000)
    media.write_cover_art_first(d / "cover_art.mp4", 3.0)
    media.write_float_pcm(d / "float_nan.mkv", 4.0)
    media.write_clip(d / "rotated.mp4", 3.0)
    media.rotate_mp4(d / "rotated.mp4", 90)
    media.write_clip(d / "late_clock.mp4", 3.0, rate=25, video_start=0.52)
    media.write_joined_ts(d / "joined.ts", 4.0)
    media.write_clip(d / "late_audio.mp4", 4.0, audio_start=1.0)
    expect = {
        "good": "store", "zero": "errors", "truncated": "errors", "text": "errors",
        "corrupt_middle": "store", "damaged": "store", "cover_art": "store", "float_nan": "store",
        "rotated": "store", "late_clock": "store", "joined": "store", "late_audio": "store", "no_audio": "store", "audio_only": "errors", "one_frame": "store",
        "half_second": "store", "tiny": "store", "my trailer – été": "store", "vp9": "store", "missing": "errors",
    }
    files = {p.stem: p.name for p in d.iterdir()} | {"missing": "does/not/exist.mp4"}
    pd.DataFrame({"trailer_id": list(expect), "path": [files[k] for k in expect], "genres": "drama",
                  "split": "train"}).to_csv(d / "manifest.csv", index=False)
    return d, expect


def _tables(out):
    done = pd.read_parquet(out)
    errors = pd.read_parquet(out / "_errors") if (out / "_errors").exists() else pd.DataFrame(columns=["trailer_id"])
    return done, errors


def test_every_row_ends_in_exactly_one_table(hostile, ray_head, tmp_path):
    from ctt.config import load_config
    from featurize.pipeline import run_featurize
    d, expect = hostile
    out = tmp_path / "store"
    cfg = load_config(None, TINY).featurize
    summary = run_featurize(str(d / "manifest.csv"), str(out), cfg)
    done, errors = _tables(out)
    ids_done, ids_err = list(done.trailer_id), list(errors.trailer_id)
    assert sorted(ids_done + ids_err) == sorted(expect)                        # each row exactly once
    for tid, where in expect.items():
        if where != "either":
            assert (tid in ids_done) == (where == "store"), (tid, where)
    assert summary["done"] == len(ids_done) and summary["failed"] == len(ids_err)
    assert sum(summary["failed_by_reason"].values()) == len(ids_err)
    e = errors.set_index("trailer_id")
    assert (e.stage == "decode").all() and e.message.str.len().gt(0).all()
    assert e.loc["missing", "error_type"] == "FileNotFoundError"
    assert "audio only" in e.loc["audio_only", "message"]
    r = done.set_index("trailer_id")
    assert not r.loc["no_audio", "has_audio"] and r.loc["no_audio", "num_windows"] == 0
    assert r.loc["half_second", "has_audio"] and r.loc["half_second", "audio_padded"]
    assert r.loc["half_second", "num_windows"] == 1 and r.loc["good", "num_windows"] == 1
    assert r.loc["one_frame", "num_keyframes"] == 1 and r.loc["tiny", "width"] == 16
    assert r.loc["damaged", "decode_errors"] > 0 and r.loc["damaged", "n_frames"] >= 0.9 * 72
    assert r.loc["corrupt_middle", "decode_errors"] > 0 and r.loc["good", "decode_errors"] == 0
    assert (r.loc["cover_art", "video_stream"], r.loc["cover_art", "audio_stream"]) == (1, 3)
    assert r.loc["float_nan", "audio_repaired"] > 0 and r.loc["float_nan", "has_audio"]
    assert (r.loc["rotated", "width"], r.loc["rotated", "height"]) == (48, 64)
    for tid, seconds in (("late_clock", 3.0), ("joined", 8.0), ("late_audio", 4.0), ("good", 4.0)):
        assert r.loc[tid, "duration_s"] == pytest.approx(seconds, abs=0.1), tid
        assert np.all(np.diff(r.loc[tid, "frame_times"]) > 0), tid
    table = pads.dataset(str(out)).to_table()
    for name in table.column_names:                                  # no column holds a NaN or an inf
        col = table.column(name).combine_chunks()
        while pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
            col = col.flatten()
        if pa.types.is_floating(col.type):
            assert np.isfinite(col.to_numpy(zero_copy_only=False)).all(), name
    print("\nhostile-input outcomes:\n" + "\n".join(
        f"  {tid:<18} {'store' if tid in ids_done else 'errors: ' + e.loc[tid, 'error_type']}" for tid in expect))

    # rerun: nothing redone; --retry-errors: failures tried again, still exactly once
    again = run_featurize(str(d / "manifest.csv"), str(out), cfg)
    assert (again["skipped"], again["done"], again["failed"]) == (len(expect), 0, 0)
    retry = run_featurize(str(d / "manifest.csv"), str(out), cfg, retry_errors=True)
    assert retry["failed"] == len(ids_err) and retry["skipped"] == len(ids_done)
    done2, errors2 = _tables(out)
    assert sorted(done2.trailer_id) == sorted(ids_done) and sorted(errors2.trailer_id) == sorted(ids_err)


def test_other_settings_are_refused(hostile, ray_head, tmp_path):
    from ctt.config import load_config
    from featurize.pipeline import run_featurize
    from featurize.store import StoreMismatch
    d, _ = hostile
    out = tmp_path / "store"
    run_featurize(str(d / "manifest.csv"), str(out), load_config(None, TINY + ["featurize.max_keyframes=2"]).featurize)
    with pytest.raises(StoreMismatch, match="max_keyframes"):
        run_featurize(str(d / "manifest.csv"), str(out), load_config(None, TINY).featurize)


def test_resume_after_a_killed_run(samples, ray_head, tmp_path):
    """Killed midway, then run again at once, with no wait: the killed driver's embedder actor
    lives on in the cluster and may land the batch in its hands while the rerun works, so
    without the run's fence and compaction a trailer could be stored twice (batches of two
    group the trailers differently in the two runs, so the files would not replace each other)."""
    out = tmp_path / "store"
    env = os.environ | {"RAY_ADDRESS": ray_head.gcs_address, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "jobs/featurize.py", "--input", str(samples / "manifest.csv"), "--output", str(out),
           *TINY, "featurize.trailers_per_batch=2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and len(list(out.glob("*.parquet"))) >= 1:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = pads.dataset(str(out)).count_rows()
    assert 1 <= partial < 10                          # killed midway; readers see only whole files
    from ctt.config import load_config
    from featurize.pipeline import run_featurize
    from featurize import store
    summary = run_featurize(str(samples / "manifest.csv"), str(out), load_config(None, TINY).featurize)
    assert summary["skipped"] >= partial and summary["skipped"] + summary["done"] + summary["failed"] == 11
    done, errors = _tables(out)
    assert sorted(done.trailer_id) == sorted(set(done.trailer_id)) and len(done) == 10
    assert list(errors.trailer_id) == ["broken1"]
    assert store.check(str(out))["ok"]
    shutil.rmtree(out / "_tmp", ignore_errors=True)


def test_a_killed_runs_late_batch_never_stores_a_trailer_twice(samples, ray_head, tmp_path, monkeypatch):
    """The race itself, made certain: a killed run's embedder actor lands its batch (trailers
    s4 and s5, embedded in a batch of their own) just after the rerun has read which
    trailers are done. The rerun featurizes s4 and s5 too, in other batches."""
    import pandas as pd

    from ctt.config import load_config
    from featurize import pipeline, store
    cfg = load_config(None, [*TINY, "featurize.trailers_per_batch=4"]).featurize
    manifest = pd.read_csv(samples / "manifest.csv", dtype=str, keep_default_na=False)
    manifest["path"] = [str(samples / p) for p in manifest["path"]]
    good = manifest[manifest["trailer_id"] != "broken1"]
    for name, rows in (("first.csv", good.iloc[:4]), ("late.csv", good.iloc[4:6]), ("all.csv", good)):
        rows.to_csv(tmp_path / name, index=False)
    out, scratch = tmp_path / "store", tmp_path / "scratch"
    pipeline.run_featurize(str(tmp_path / "first.csv"), str(out), cfg)          # the killed run's first batch
    killed = store.current_run(str(out))
    pipeline.run_featurize(str(tmp_path / "late.csv"), str(scratch), cfg)       # the batch in the actor's hands
    late = store.read_table(str(scratch))
    read_done = store.done_ids
    landed = []

    def done_then_the_late_batch(path):
        ids = read_done(path)
        if path == str(out) and not landed:
            landed.append(store.write_atomic(late, str(out), run=killed))
        return ids
    monkeypatch.setattr(store, "done_ids", done_then_the_late_batch)
    summary = pipeline.run_featurize(str(tmp_path / "all.csv"), str(out), cfg)
    assert landed == [None]                                   # the killed run no longer owns the store
    assert summary["skipped"] == 4 and summary["done"] == len(good) - 4
    done = pd.read_parquet(out)
    assert sorted(done.trailer_id) == sorted(good.trailer_id)  # each once
    assert store.check(str(out))["ok"]


def test_a_file_replaced_between_two_runs_stays_one_row(samples, ray_head, tmp_path):
    """A rerun after a trailer's file was replaced skips it (its id is done): one row, the first."""
    import pandas as pd

    from ctt.config import load_config
    from featurize import pipeline, store
    cfg = load_config(None, TINY).featurize
    manifest = pd.read_csv(samples / "manifest.csv", dtype=str, keep_default_na=False).iloc[:2]
    (tmp_path / "v").mkdir()
    for p in manifest["path"]:
        shutil.copy(samples / p, tmp_path / "v" / Path(p).name)
    manifest["path"] = ["v/" + Path(p).name for p in manifest["path"]]
    manifest.to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "store"
    first = pipeline.run_featurize(str(tmp_path / "m.csv"), str(out), cfg)
    before = pd.read_parquet(out).set_index("trailer_id")["n_frames"]
    media.write_clip(tmp_path / manifest["path"].iloc[0], 1.0)        # another video under the same name
    again = pipeline.run_featurize(str(tmp_path / "m.csv"), str(out), cfg)
    after = pd.read_parquet(out).set_index("trailer_id")["n_frames"]
    assert first["done"] == 2 and again["skipped"] == 2 and again["done"] == 0
    assert after.sort_index().equals(before.sort_index()) and store.check(str(out))["ok"]
