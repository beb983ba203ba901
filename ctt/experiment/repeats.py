"""Repeats over seeds (beyond the paper): one parent MLflow run per method, a child run per
seed, and the mean and standard deviation of every test metric on the parent, so a
difference between methods can be told from the noise of a single draw.

Children are ordinary runs (each one can be reported, fused, served) that carry
`mlflow.parentRunId`, `repeat_group` (the parent's id) and `seed`; the parent has tag
kind=repeats and no predictions of its own. Fusing two parents pairs their children by seed.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from ctt.config import Config
from ctt.experiment.tracking import connection, reading, recording

GROUP_TAG = "repeat_group"
SEED_TAG = "seed"


def child_tags(parent: str, seed: int) -> dict[str, str]:
    return {"mlflow.parentRunId": parent, GROUP_TAG: parent, SEED_TAG: str(seed)}


def spread(summaries: list[dict[str, float]]) -> dict[str, float]:
    """Test metrics of the children -> `<metric>_mean` and `<metric>_std` (population std;
    NaN where a metric is undefined in every child)."""
    keys = sorted({k for s in summaries for k in s})
    out = {}
    for k in keys:
        v = np.array([s.get(k, np.nan) for s in summaries], np.float64)
        ok = v[np.isfinite(v)]
        out[f"{k}_mean"] = float(ok.mean()) if len(ok) else float("nan")
        out[f"{k}_std"] = float(ok.std()) if len(ok) else float("nan")
    return out


def run_repeats(cfg: Config, job: str, method: str, seeds: list[int],
                one: Callable[[Config, dict[str, str]], dict[str, Any]]) -> dict[str, Any]:
    """A parent run, then `one(cfg at seed s, child tags)` for each seed, then the spread of
    the children's `test` metrics logged on the parent."""
    name = recording.run_name(cfg, f"{method}-x{len(seeds)}")
    with recording.record_run("repeats", name, cfg=cfg, job=job, params={"method": method, "seeds": seeds},
                              tags={"repeats_of": method}) as parent:
        pass
    children = []
    for k, seed in enumerate(seeds):
        print(f"seed {k + 1}/{len(seeds)} (train.seed={seed})", flush=True)
        c = copy.deepcopy(cfg)
        c.train.seed = seed
        c.tracking.run_name = f"{name}-seed{seed}"
        children.append(one(c, child_tags(parent, seed)) | {"seed": seed})
    stats = spread([ch["test"] for ch in children])
    with recording.open_run(cfg.tracking.experiment, name, {}, resume=parent):
        recording.log_metrics(parent, stats)
    return {"run_id": parent, "run_name": name, "method": method, "seeds": seeds, "spread": stats,
            "children": [{"seed": ch["seed"], "run_id": ch["run_id"]} for ch in children],
            "tracking_uri": connection.tracking_uri()} | connection.ui_links(parent)


def children_by_seed(experiment: str, parent: str) -> dict[int, str]:
    """seed -> run id of a parent's finished children ({} for a run that is not a parent)."""
    runs = reading.find_runs(experiment, f"tags.{GROUP_TAG} = '{parent}'")
    return {int(r.tags[SEED_TAG]): r.run_id for r in runs if SEED_TAG in r.tags}
