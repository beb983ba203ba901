"""Predict's batch scoring on the cluster: store rows through a scorer in an actor pool,
written as a Parquet dataset."""
from __future__ import annotations

import ray


def score_dataset(store_path: str, columns: list[str], scorer_cls: type, args: tuple, output: str) -> None:
    """Store rows -> `scorer_cls(*args)` in an actor pool -> a Parquet dataset at `output`."""
    ds = ray.data.read_parquet(store_path, file_extensions=["parquet"]).select_columns(columns)
    ds = ds.map_batches(scorer_cls, fn_constructor_args=args, batch_format="pyarrow", batch_size=16,
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=2))
    ds.write_parquet(output)
