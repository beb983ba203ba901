"""Near-duplicate trailers: the pure finder (signatures, faiss candidates, scores, groups)
against brute-force and scipy references, the renderer's cuts of one film, and the dedup job
on a store with planted re-cuts, followed by split.py."""
from __future__ import annotations

import itertools

import av
import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from benchmarks.dedup_cost import synthetic_signatures
from featurize import dedup
from featurize.config import DedupConfig
from featurize.sample_cuts import ENCODINGS, film_plan, make_cuts, recut
from featurize.sample_trailers import SampleSpec


def brute_pairs(sig: dedup.Signatures, cfg: DedupConfig) -> set[tuple[int, int]]:
    """Every pair of trailers with a positive score: the all-pairs loop the index avoids."""
    out = set()
    for i, j in itertools.combinations(range(len(sig.ids)), 2):
        if dedup.pair_score(sig.of(i), sig.of(j), cfg)[0] > 0:
            out.add((i, j))
    return out


@pytest.mark.parametrize("exact_limit", [10**9, 0])          # exact inner product, then the HNSW graph
def test_candidates_hold_every_scoring_pair(exact_limit):
    ids, projected, film = synthetic_signatures(120, seed=1)
    sig = dedup.signatures(ids, projected)
    cfg = DedupConfig(exact_limit=exact_limit)
    want = brute_pairs(sig, cfg)
    assert len(want) >= 20                                     # the planted re-cuts score
    assert want <= dedup.candidate_pairs(sig, cfg)
    found = {(p.a, p.b) for p in dedup.find_pairs(sig, cfg)}
    assert found == {(ids[i], ids[j]) for i, j in want}


def test_planted_recuts_found_with_precision_and_recall():
    ids, projected, film = synthetic_signatures(300, seed=2)
    sig = dedup.signatures(ids, projected)
    cfg = DedupConfig()
    near = [p for p in dedup.find_pairs(sig, cfg) if p.score >= cfg.min_score]
    truth = {(a, b) for a, b in itertools.combinations(sorted(ids), 2) if film[a] == film[b]}
    hit = {(min(p.a, p.b), max(p.a, p.b)) for p in near}
    assert len(hit & truth) / len(truth) >= 0.95 and len(hit & truth) / len(hit) >= 0.95


def test_score_ignores_order_and_counts_shared_shots():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((12, 16)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    cfg = DedupConfig(shot_similarity=0.9, min_shared=2)
    b = np.concatenate([a[rng.permutation(12)[:9]], rng.standard_normal((3, 16)).astype(np.float32) * 0.1])
    b[9:] /= np.linalg.norm(b[9:], axis=1, keepdims=True)
    score, matches = dedup.pair_score(a, b, cfg)
    assert len(matches) == 9 and score == pytest.approx(9 / 12)
    assert len({m[0] for m in matches}) == len({m[1] for m in matches}) == 9          # one to one
    assert dedup.pair_score(a[:1], b[:1], cfg)[0] == 0.0                              # one shared shot is not a cut
    assert dedup.pair_score(a, np.zeros((0, 16), np.float32), cfg) == (0.0, [])


def test_groups_are_connected_components():
    rng = np.random.default_rng(3)
    ids = [f"t{i:02d}" for i in range(30)]
    pairs = [dedup.Pair(ids[i], ids[j], float(rng.random()), [], []) for i, j in rng.integers(0, 30, (25, 2)) if i != j]
    group = dedup.groups(ids, pairs, 0.5)
    edges = [(ids.index(p.a), ids.index(p.b)) for p in pairs if p.score >= 0.5]
    n, labels = connected_components(coo_matrix((np.ones(len(edges)), tuple(zip(*edges))), shape=(30, 30)),
                                     directed=False)
    assert len(set(group.values())) == n
    for i, j in itertools.combinations(range(30), 2):
        assert (group[ids[i]] == group[ids[j]]) == (labels[i] == labels[j])
    assert all(group[t] == min(u for u in ids if group[u] == group[t]) for t in ids)   # named by the smallest id
    assert dedup.straddling({"a": "a", "b": "a", "c": "c"}, {"a": "train", "b": "test", "c": "val"}) == \
        {"a": ["test", "train"]}


def test_projection_keeps_cosines():
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((200, 512))).astype(np.float32)
    m = dedup.projection(512, 256, seed=0)
    p = dedup.project(x, m)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    pn = p / np.linalg.norm(p, axis=1, keepdims=True)
    err = np.abs((xn @ xn.T) - (pn @ pn.T))
    assert err.mean() < 0.05 and np.array_equal(dedup.projection(512, 256, 0), m)
    assert np.array_equal(dedup.projection(32, 64), np.eye(32, dtype=np.float32))       # small features kept as they are


def test_cuts_of_one_film(tmp_path):
    spec = SampleSpec(min_seconds=2, max_seconds=3)
    plan = film_plan(["horror"], 5, spec)
    cut = recut(plan, 9, ["horror"], spec)
    kept = [s for s in cut if s in plan]
    assert cut[0].style.sat == 0.0 and cut[0] not in plan                 # its own title card first
    assert 0.6 * len(plan) <= len(kept) < len(plan) and len(cut) - 1 - len(kept) in (1, 2)   # some dropped, 1-2 added
    assert [plan.index(s) for s in kept] != sorted(plan.index(s) for s in kept)              # reordered
    rows = make_cuts(tmp_path, [["horror"], ["comedy"]], [4, 1], seed=3, spec=spec)
    assert rows.film.tolist() == ["film000"] * 4 + ["film001"]
    for row, enc in zip(rows.itertuples(), [0, 1, 2, 3, 0]):
        with av.open(str(tmp_path / row.path)) as c:
            v = c.streams.video[0]
            assert (v.codec_context.width, v.codec_context.height, v.codec_context.name) == \
                (ENCODINGS[enc][0], ENCODINGS[enc][1], {"libx264": "h264", "mpeg4": "mpeg4"}[ENCODINGS[enc][3]])
            assert len(c.streams.audio) == 1


@pytest.mark.slow
def test_dedup_job_then_split(medium_store, tracking_env, tmp_path, capsys):
    """The medium store's planted re-cuts (tests/conftest.py RECUT_FILMS) among 61 other
    trailers: the job finds them, logs its run, and split.py keeps each group whole."""
    import mlflow

    from featurize import store
    from jobs import dedup as job
    from jobs import split
    out = tmp_path / "dedup"
    assert job.main(["--features", str(medium_store), "--output", str(out), "tracking.experiment=dedup"]) == 0
    printed = capsys.readouterr().out
    pairs = pd.read_parquet(out / "pairs.parquet")
    near = pairs[pairs.near_duplicate]
    film = {t: t.split("_cut")[0] for t in store.done_ids(str(medium_store)) if "_cut" in t}
    truth = {(a, b) for a, b in itertools.combinations(sorted(film), 2) if film[a] == film[b]}
    found = {tuple(sorted((a, b))) for a, b in zip(near.trailer_a, near.trailer_b)}
    assert len(found & truth) / len(truth) >= 0.95 and len(found & truth) / len(found) >= 0.95, (found, truth)
    assert (near.shared_shots >= 3).all() and (near.score >= 0.5).all()
    groups = pd.read_parquet(out / "groups.parquet")
    assert len(groups) == 71 and set(groups.columns) >= {"trailer_id", "group", "group_size", "split"}
    assert groups[groups.group_size > 1].group.nunique() == 4 and "2 divided by the store's splits" in printed
    client = mlflow.MlflowClient(tracking_env)
    (run,) = client.search_runs([client.get_experiment_by_name("dedup").experiment_id])
    assert run.data.metrics["near_duplicate_pairs"] == len(near) and run.data.metrics["groups_straddling"] == 2
    assert {a.path for a in client.list_artifacts(run.info.run_id, "dedup")} == {"dedup/summary.json",
                                                                              "dedup/top_pairs.png"}
    # split.py with the groups: every group in one split, every trailer with a split
    manifest = medium_store.parent / "manifest.csv"
    assert split.main(["--input", str(manifest), "--output", str(tmp_path / "split.csv"), "--groups",
                       str(out / "groups.parquet"), "--resplit"]) == 0
    made = pd.read_csv(tmp_path / "split.csv", dtype=str).merge(groups[["trailer_id", "group"]], on="trailer_id")
    assert len(made) == 71 and made.split.isin(["train", "val", "test"]).all()
    assert (made.groupby("group").split.nunique() == 1).all()
