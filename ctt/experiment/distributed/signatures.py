"""The dedup job's read of a store on the cluster: every trailer's keyframe features projected
to its small shot signatures in Ray Data tasks, so the driver holds `dim` floats per shot,
never the features."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray

from featurize.dedup import project, projection


def _project(batch: pa.Table, in_dim: int, dim: int, seed: int) -> pa.Table:
    matrix = projection(in_dim, dim, seed)
    out = [project(np.asarray(f, np.float32), matrix).ravel() if f else np.zeros(0, np.float32)
           for f in batch.column("frames").to_pylist()]
    return pa.table({"trailer_id": batch.column("trailer_id"), "split": batch.column("split"),
                     "signature": pa.array(out, pa.list_(pa.float32()))})


def shot_signatures(store_path: str, in_dim: int, dim: int, seed: int) -> tuple[list[str], list[str], list[np.ndarray]]:
    """(trailer ids, their splits, each trailer's (shots, dim) projected features), in id order."""
    dim = min(dim, in_dim)
    ds = ray.data.read_parquet(store_path, file_extensions=["parquet"]).select_columns(["trailer_id", "split", "frames"])
    ds = ds.map_batches(_project, fn_kwargs={"in_dim": in_dim, "dim": dim, "seed": seed}, batch_format="pyarrow",
                        batch_size=64)
    rows = sorted(ds.take_all(), key=lambda r: r["trailer_id"])
    return ([r["trailer_id"] for r in rows], [r["split"] for r in rows],
            [np.asarray(r["signature"], np.float32).reshape(-1, dim) for r in rows])
