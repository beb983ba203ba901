"""Splits made for a catalogue: genres balanced per split, groups never divided."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featurize.genres import GENRES, multi_hot, sample_labels
from featurize.splits import SPLITS, divided_groups, stratify

ROOT = Path(__file__).resolve().parents[1]
R = np.array([0.7, 0.1, 0.2])


def _worst(y: np.ndarray, split: np.ndarray) -> float:
    """The largest gap, in trailers, between a genre's count in a split and its target."""
    return max(abs(y[split == s, c].sum() - R[s] * y[:, c].sum()) for s in range(3) for c in range(y.shape[1]))


@pytest.mark.parametrize("seed", range(3))
def test_genres_land_within_one_trailer_of_their_targets(seed):
    from iterstrat.ml_stratifiers import IterativeStratification
    y = multi_hot(sample_labels(np.random.default_rng(seed), 200))
    ours = stratify(y, seed=seed)
    assert np.bincount(ours, minlength=3).tolist() == pytest.approx((R * 200).tolist(), abs=2)
    theirs = IterativeStratification(y.astype(int), R, np.random.RandomState(seed))   # the package, same manifest
    assert _worst(y, ours) <= 1.0 and _worst(y, ours) <= _worst(y, np.asarray(theirs)) + 1e-9


def test_groups_are_placed_whole():
    rng = np.random.default_rng(4)
    y = multi_hot(sample_labels(rng, 200))
    groups = np.repeat(np.arange(100), rng.integers(1, 6, 100))[:200]
    for i in range(0, 200):                                     # the cuts of one film share its genres
        y[i] = y[np.flatnonzero(groups == groups[i])[0]]
    split = stratify(y, groups.tolist(), seed=1)
    assert divided_groups([SPLITS[s] for s in split], groups.tolist()) == {}
    assert _worst(y, split) <= 4                                 # whole groups cost some balance
    assert divided_groups(["train", "test", "train"], ["a", "a", "b"]) == {"a": ["test", "train"]}


def test_the_job_splits_a_manifest_keeping_what_it_has(tmp_path):
    rng = np.random.default_rng(0)
    labels = sample_labels(rng, 60)
    film = [f"film{i // 3}" for i in range(60)]                 # three cuts per film
    m = pd.DataFrame({"trailer_id": [f"t{i}" for i in range(60)], "path": [f"v/t{i}.mp4" for i in range(60)],
                      "genres": ["|".join(g).upper() for g in labels], "split": "", "film": film})
    m.loc[0, "split"], m.loc[1, "split"] = "test", "train"      # a divided group, already split
    m.to_csv(tmp_path / "m.csv", index=False)
    job = [sys.executable, str(ROOT / "jobs/split.py"), "--input", str(tmp_path / "m.csv"),
           "--output", str(tmp_path / "s.csv"), "--group-column", "film"]
    done = subprocess.run(job, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "divide 1 group(s): film0" in done.stderr
    out = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert list(out.columns) == list(m.columns) and out.genres.tolist() == m.genres.tolist()
    assert out.split[0] == "test" and out.split[1] == "train" and set(out.split) == set(SPLITS)
    assert set(divided_groups(out.split.tolist(), film)) == {"film0"}            # only the one it was given
    assert all(g in done.stdout for g in GENRES) and "trailers" in done.stdout
    again = subprocess.run(job + ["--resplit"], capture_output=True, text=True, timeout=120)
    out = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert again.returncode == 0 and divided_groups(out.split.tolist(), film) == {}
    bad = subprocess.run(job + ["--fractions", "0.7,0.3"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--fractions" in bad.stderr
