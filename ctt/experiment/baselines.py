"""The paper's baselines as MLflow runs: VLLF and AV (SVMs, grid on a Ray cluster) and random;
and, beyond the paper, the linear probe on pooled store columns (`ctt.probe`), logged as
method `probe-<input>`.

    driver: read vllf|av vectors of train/val/test
    tasks:  one per grid point: fit 9 one-vs-all SVMs on train, score each on val
    driver: best grid point per genre -> one task per genre refits it -> val/test probabilities

The fan-out is `ctt.experiment.distributed.fanout.ray_map`, or any function of the same signature.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pyarrow.compute as pc

from ctt import svm
from ctt import linear_probe
from ctt.config import BASELINES, Config
from ctt.data import sort_by_id, vectors
from ctt.experiment.distributed.fanout import ray_map
from ctt.fusion import Split
from ctt.experiment.method_runs import log_method_run
from featurize import store
from featurize.genres import multi_hot

class BaselineError(ValueError):
    pass


def load_split(store_path: str, split: str, column: str | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    cols = ["trailer_id", "genres"] + ([column] if column else [])
    t = store.read_table(store_path, columns=cols, filter=pc.field("split") == split)
    t = sort_by_id(t)
    ids = t.column("trailer_id").to_pylist()
    y = multi_hot(t.column("genres").to_pylist())
    return ids, vectors(t, column) if column else np.zeros((len(ids), 0)), y


def _grid_point(data, params: dict[str, Any], seed: int, max_iter: int, scores: str) -> np.ndarray:
    Xtr, Ytr, Xva, Yva = data
    return svm.val_scores(Xtr, Ytr, Xva, Yva, params, seed, max_iter, scores)


def _cv_point(data, params: dict[str, Any], seed: int, max_iter: int, folds: int, scores: str) -> np.ndarray:
    X, Y = data
    return svm.cv_scores(X, Y, params, folds, seed, max_iter, scores)


def _fit_genre(data, c: int, params: dict[str, Any], seed: int, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    Xtr, Ytr, Xva, Xte = data
    model = svm.fit_genre(Xtr, Ytr[:, c], params, seed, max_iter)
    return svm.genre_probs(model, Xva), svm.genre_probs(model, Xte)


def svm_baseline(store_path: str, column: str, cfg: Config,
                 map_fn: Callable = ray_map) -> tuple[Split, Split, dict[str, Any]]:
    splits = {s: load_split(store_path, s, column) for s in ("train", "val", "test")}
    for s, (ids, X, _) in splits.items():
        if not ids:
            raise BaselineError(f"{store_path} has no '{s}' trailers; the manifest needs a split column")
        if X.shape[1] == 0:
            why = " (the store was made with featurize.av=false)" if column == "av" else ""
            raise BaselineError(f"{store_path}: column {column!r} is empty{why}; featurize a store with it")
    (tr_ids, Xtr, Ytr), (va_ids, Xva, Yva), (te_ids, Xte, Yte) = (splits[s] for s in ("train", "val", "test"))
    grid = svm.param_grid(cfg.baseline)
    seed, cpus = cfg.baseline.seed, cfg.baseline.cpus_per_task
    max_iter = cfg.baseline.max_iter
    b = cfg.baseline
    if b.selection == "cv":                        # beyond the paper: k-fold CV instead of the val split
        Xcv, Ycv = (Xtr, Ytr) if b.cv_data == "train" else (np.concatenate([Xtr, Xva]), np.concatenate([Ytr, Yva]))
        scores = np.stack(map_fn(_cv_point, [(p, seed, max_iter, b.folds, b.grid_scores) for p in grid], (Xcv, Ycv), cpus,
                                 f"{column} SVM grid ({b.folds}-fold CV)"))
    else:
        scores = np.stack(map_fn(_grid_point, [(p, seed, max_iter, b.grid_scores) for p in grid], (Xtr, Ytr, Xva, Yva), cpus,
                                 f"{column} SVM grid"))
    chosen = [grid[i] for i in svm.select(scores)]
    outs = map_fn(_fit_genre, [(c, chosen[c], seed, max_iter) for c in range(Ytr.shape[1])], (Xtr, Ytr, Xva, Xte),
                  cpus, f"{column} refit")
    val_p = np.stack([o[0] for o in outs], axis=1)
    test_p = np.stack([o[1] for o in outs], axis=1)
    info = {"grid_points": len(grid), "chosen": chosen, "feature_dim": int(Xtr.shape[1]), "selection": b.selection,
            "grid_scores": b.grid_scores, "val_scores": scores.tolist()}
    return (te_ids, Yte, test_p), (va_ids, Yva, val_p), info


def random_baseline(store_path: str, cfg: Config) -> tuple[Split, Split, dict[str, Any]]:
    """Uniform random probabilities, with a fixed seed."""
    rng = np.random.default_rng(cfg.baseline.seed)
    out = []
    for split in ("test", "val"):
        ids, _, y = load_split(store_path, split, None)
        out.append((ids, y, rng.random(y.shape)))
    return out[0], out[1], {}


def probe_baseline(store_path: str, cfg: Config) -> tuple[Split, Split, dict[str, Any]]:
    what = cfg.baseline.probe_input
    (tr, Xtr, Ytr), (va, Xva, Yva), (te, Xte, Yte) = (linear_probe.load(store_path, s, what) for s in ("train", "val", "test"))
    for s, ids in (("train", tr), ("val", va), ("test", te)):
        if not ids:
            raise BaselineError(f"{store_path} has no '{s}' trailers for the {what} probe")
    (val_p, test_p), chosen = linear_probe.fit_predict(Xtr, Ytr, [Xva, Xte], cfg.baseline.seed)
    return (te, Yte, test_p), (va, Yva, val_p), {
        "feature_dim": int(Xtr.shape[1]), "chosen": [{"C": c, "cv_average_precision": a} for c, a in chosen],
        "grid_points": len(linear_probe.CS)}


def method_name(method: str, cfg: Config) -> str:
    """The run's method tag: a probe is named by what it reads (the report sets it beside the
    models that read the same)."""
    return f"probe-{cfg.baseline.probe_input}" if method == "probe" else method


def run_baseline(store_path: str, method: str, cfg: Config, map_fn: Callable = ray_map) -> dict[str, Any]:
    if method not in BASELINES:
        raise BaselineError(f"unknown method {method!r}: expected one of {', '.join(BASELINES)}")
    try:
        store.require_settings(store_path)
    except store.NotAStore as e:
        raise BaselineError(str(e)) from None
    t0 = time.time()
    if method == "random":
        test, val, info = random_baseline(store_path, cfg)
    elif method == "probe":
        test, val, info = probe_baseline(store_path, cfg)
    else:
        test, val, info = svm_baseline(store_path, method, cfg, map_fn)
    params = {"features": store_path, "fit_s": round(time.time() - t0, 1)}
    if info:
        params |= {"grid_points": info["grid_points"], "feature_dim": info["feature_dim"],
                   "chosen_params": info["chosen"]}
    model = {"method": method, "chosen_params_per_genre": info.get("chosen"), "seed": cfg.baseline.seed}
    summary = log_method_run(cfg, "baselines", method_name(method, cfg), test=test, val=val, params=params, model=model,
                             extra={"val_scores_per_grid_point": info.get("val_scores")}, store_path=store_path)
    return summary | {"wall_s": round(time.time() - t0, 1)}
