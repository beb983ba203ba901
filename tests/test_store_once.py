"""Each trailer once in a store, whatever was killed: a run's fence, compaction, the check."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurize import store

ROOT = Path(__file__).resolve().parents[1]


def _table(ids: list[str], dim: int = 4) -> pa.Table:
    rows = [store.trailer_row(dim, trailer_id=t, frames=np.ones((2, dim), np.float32),
                              frame_times=np.zeros(2, np.float32), shot_starts=np.zeros(2, np.int32)) for t in ids]
    return store.features_table(rows, dim)


def _ids(path) -> list[str]:
    return sorted(store.read_table(str(path), columns=["trailer_id"]).column(0).to_pylist())


def test_a_run_that_lost_the_store_writes_nothing(tmp_path):
    store.claim(str(tmp_path), {"feature_dim": 4})
    old = store.begin_run(str(tmp_path))
    assert store.write_atomic(_table(["a"]), str(tmp_path), run=old) is not None
    new = store.begin_run(str(tmp_path))                       # a rerun takes the store
    assert store.write_atomic(_table(["a", "b"]), str(tmp_path), run=old) is None      # the killed run's late batch
    assert store.write_atomic(_table(["b", "c"]), str(tmp_path), run=new) is not None
    assert _ids(tmp_path) == ["a", "b", "c"] and not list((tmp_path / store.TMP_DIR).iterdir())


def test_compaction_keeps_one_row_per_trailer_and_clears_resolved_errors(tmp_path):
    s = str(tmp_path)
    store.claim(s, {"feature_dim": 4})
    for ids in (["a", "b"], ["a", "c"], ["c", "d", "d"]):       # a and c twice, d twice in one file
        store.write_atomic(_table(ids), s)
    store.write_atomic(store.errors_table([{"trailer_id": "b", "stage": "decode"},
                                           {"trailer_id": "x", "stage": "decode"}]), s, store.ERRORS_DIR)
    before = store.check(s)
    assert before["duplicate_ids"] == ["a", "c", "d"] and before["also_in_errors"] == ["b"] and not before["ok"]
    removed = store.compact(s)
    assert removed == {"duplicate_rows": 3, "errors_resolved": 1}
    assert _ids(tmp_path) == ["a", "b", "c", "d"] and store.error_ids(s) == {"x"}
    after = store.check(s)
    assert after["ok"] and after["rows"] == after["trailers"] == 4
    assert store.compact(s) == {"duplicate_rows": 0, "errors_resolved": 0}            # idempotent


def test_the_check_finds_non_finite_values_and_the_job_reports_it(tmp_path):
    s = str(tmp_path)
    store.claim(s, {"feature_dim": 4})
    t = _table(["a", "b"])
    bad = t.set_column(t.schema.get_field_index("duration_s"), "duration_s",
                       pa.array([1.0, float("nan")], pa.float32()))          # another tool's store
    pq.write_table(bad, tmp_path / "other.parquet")
    store.write_atomic(_table(["a"]), s)
    job = [sys.executable, str(ROOT / "jobs/featurize.py"), "--check", s]
    out = subprocess.run(job, capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["non_finite"] == {"duration_s": 1} and report["duplicate_ids"] == ["a"]
    fixed = subprocess.run(job + ["--fix"], capture_output=True, text=True, timeout=120)
    assert json.loads(fixed.stdout)["duplicate_ids"] == [] and fixed.returncode == 1     # the NaN is still there
    missing = subprocess.run(job[:-1] + [str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "not a feature store" in missing.stderr


@pytest.mark.parametrize("n", [0, 3])
def test_a_store_with_nothing_twice_is_left_alone(tmp_path, n):
    s = str(tmp_path)
    store.claim(s, {"feature_dim": 4})
    for i in range(n):
        store.write_atomic(_table([f"t{i}"]), s)
    files = store.files(s)
    assert store.compact(s) == {"duplicate_rows": 0, "errors_resolved": 0} and store.files(s) == files
