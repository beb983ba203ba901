"""LMTD-9 import from a fixture built in the release's exact formats (pickle + SQLite)."""
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from featurize.genres import GENRES

ROOT = Path(__file__).resolve().parents[1]
COLS = ["isAction", "isAdventure", "isComedy", "isCrime", "isDrama", "isHorror", "isRomance", "isSciFi", "isThriller"]


def make_release(root: Path, n: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """A small LMTD-9 release: genre c shows as a raised feature c in the keyframes."""
    rng = np.random.default_rng(seed)
    feats, rows = {}, []
    for i in range(n):
        tid = f"{i + 1:06d}"
        y = np.zeros(9, int)
        y[rng.choice(9, int(rng.integers(1, 4)), replace=False)] = 1
        x = rng.normal(0, 0.2, (int(rng.integers(3, 12)), 2048))
        for c in np.flatnonzero(y):
            x[:, c] += 3                                            # genre c: feature c is high throughout
        feats[tid] = x                                              # float64, as numpy pickles it
        rows.append((i + 1, [0, 0, 0, 0, 0, 1, 1, 2, 2, 2][i % 10], *y.tolist()))
    feats["900001"] = rng.normal(size=(5, 100))                     # wrong width
    feats["900002"] = np.zeros((0, 2048))                           # no keyframes
    feats["900003"] = np.full((4, 2048), np.nan)                    # not finite
    feats["900004"] = rng.normal(size=(4, 2048))                    # no labels row
    rows += [(900001, 0, 1, *[0] * 8), (900002, 0, 1, *[0] * 8), (900003, 0, 1, *[0] * 8),
             (900005, 0, 1, *[0] * 8),                              # labels but no features
             (900006, 0, *[0] * 9)]                                 # features below, but no genre
    feats["900006"] = rng.normal(size=(4, 2048))
    pkl, db = root / "lmtd9_resnet152.pickle", root / "database.db"
    with open(pkl, "wb") as fh:
        pickle.dump(feats, fh, protocol=2)
    with sqlite3.connect(db) as con:
        con.execute(f"CREATE TABLE lmtd9_0 (id INTEGER, \"set\" INTEGER, {', '.join(c + ' INTEGER' for c in COLS)})")
        con.executemany(f"INSERT INTO lmtd9_0 VALUES ({', '.join('?' * 11)})", rows)
    return pkl, db


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_forbidden_pickle_is_refused_without_running_it(tmp_path):
    from featurize.lmtd import ForbiddenPickle, load_features
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"000001": Evil()}))
    os.chdir(tmp_path)
    with pytest.raises(ForbiddenPickle, match="posix.system|os.system"):
        load_features(str(path))
    assert not (tmp_path / "pwned").exists()
    _, db = make_release(tmp_path)
    proc = subprocess.run([sys.executable, str(ROOT / "jobs/import_lmtd.py"), "--features", str(path),
                           "--database", str(db), "--output", str(tmp_path / "store")], capture_output=True, text=True)
    assert proc.returncode == 1 and "refusing to load it" in proc.stderr and not (tmp_path / "pwned").exists()


def test_import_writes_a_store_and_errors(tmp_path):
    from jobs import import_lmtd
    pkl, db = make_release(tmp_path)
    out = tmp_path / "store"
    assert import_lmtd.main(["--features", str(pkl), "--database", str(db), "--output", str(out)]) == 0
    t = pads.dataset(str(out)).to_table().to_pandas()
    assert len(t) == 40 and set(t.split) == {"train", "val", "test"}
    assert (t.split == "train").sum() == 20 and (t.split == "val").sum() == 8 and (t.split == "test").sum() == 12
    assert t.trailer_id.str.len().eq(6).all()
    row = t.set_index("trailer_id").loc["000001"]
    assert np.stack(row.frames).shape[1] == 2048
    errors = pd.read_parquet(out / "_errors").set_index("trailer_id")
    assert errors.error_type.to_dict() == {"900001": "BadFeatures", "900002": "BadFeatures", "900003": "BadFeatures",
                                           "900004": "MissingLabels", "900005": "MissingFeatures",
                                           "900006": "MissingLabels"}
    with sqlite3.connect(db) as con:
        labels = pd.read_sql("SELECT * FROM lmtd9_0 WHERE id = 1", con).iloc[0]
    assert list(row.genres) == [g for g, c in zip(GENRES, COLS) if labels[c]]
    again = import_lmtd.main(["--features", str(pkl), "--database", str(db), "--output", str(out)])
    assert again == 0 and pads.dataset(str(out)).count_rows() == 40          # rerun: nothing twice


@pytest.mark.slow
def test_train_on_imported_release(tmp_path, mlflow_server, ray_head, monkeypatch):
    import mlflow

    from ctt.experiment.baselines import run_baseline
    from ctt.config import load_config
    from ctt.experiment.distributed.train_driver import run_training
    from featurize.lmtd import import_release
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    pkl, db = make_release(tmp_path, n=60)
    out = str(tmp_path / "store")
    import_release(str(pkl), str(db), out)
    cfg = load_config(ROOT / "configs/ctt-c_f3_n256.yaml", ["train.max_epochs=10", "train.checkpoint_every=10", "train.batch_size=8",
                                                            "tracking.experiment=lmtd-fixture",
                                                            f"tracking.storage_path={tmp_path}"])
    s = run_training(out, cfg)
    r = run_baseline(out, "random", cfg)
    client = mlflow.MlflowClient(mlflow_server.url)
    assert client.get_run(s["run_id"]).data.params["n_test"] == "18"
    assert s["test"]["test_auprc_micro"] > r["test"]["test_auprc_micro"] + 0.2      # the bumps are learnable
    print("fixture run:", {k: round(v, 3) for k, v in s["test"].items() if k.count("_") == 2},
          "random:", {k: round(v, 3) for k, v in r["test"].items() if k.count("_") == 2})
