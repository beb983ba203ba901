"""The Ray Train worker: its shard of train and all of val from the store, `ctt.training.fit`
around them, and every k epochs a report with a checkpoint.

    worker: its fixed part of train + all of val -> fit(...) -> every k epochs: report(metrics, checkpoint)
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import ray
import ray.train
import ray.train.torch
import torch
from ray.data.collate_fn import ArrowBatchCollateFn

from ctt.data import Collate, ShardCache, StoreInfo, columns_of, draw_seed, dropout_seed, sort_by_id
from ctt.experiment.distributed.checkpoints import EpochLog, report_with_checkpoint, restore
from ctt.experiment.tracking import recording
from ctt.models import build_model, set_input_stats
from ctt.training import FitState, fit, make_optimizer, seed_everything
from featurize import store


class ArrowCollate(ArrowBatchCollateFn):
    """A `ctt.data.Collate` in the form Ray Data runs beside its loader."""

    def __init__(self, inner: Collate):
        self.inner = inner

    def __call__(self, batch: pa.Table) -> dict[str, torch.Tensor]:
        return self.inner(batch)


def say(line: str) -> None:
    """One line to the job's output, once: Ray Train patches `print` in its workers to log each
    message and, where stdout is wrapped (Ray's worker streams), to print it too: twice."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def split_dataset(info: StoreInfo, split: str, model_name: str, materialize: bool) -> ray.data.Dataset:
    cols = columns_of(model_name)
    ds = ray.data.read_parquet(info.path, file_extensions=["parquet"]).select_columns(cols + store.FILTER_COLUMNS)
    ds = ds.map_batches(store.select_split, fn_kwargs={"split": split, "column": info.column, "columns": cols},
                        batch_format="pyarrow", batch_size=None)
    return ds.materialize() if materialize else ds


def _tables(shard) -> Iterator[pa.Table]:
    return shard.iter_batches(batch_format="pyarrow", batch_size=None)


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    cfg = config["cfg"]
    run_id = config["run_id"]
    os.environ["MLFLOW_TRACKING_URI"] = config["tracking_uri"]   # the driver's store, whatever the node's env
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # Where each rank runs, as a tag of the run (rewritten if a restarted group lands elsewhere).
    recording.set_tag(run_id, f"ray.worker{rank}.node", ray.get_runtime_context().get_node_id())
    seed_everything(cfg.train.seed)               # same init on every rank; DDP also broadcasts rank 0's
    net = build_model(cfg.model, config["feature_dim"])
    set_input_stats(net, config["input_stats"])
    model = ray.train.torch.prepare_model(net)
    optimizer = make_optimizer(model, cfg.train)
    state = restore(model, optimizer, rank, run_id, config.get("resume_from"))
    start = state.epoch + 1
    seed_everything(dropout_seed(cfg.train.seed, rank, start))

    per_worker = max(1, cfg.train.batch_size // world)
    collate = Collate(cfg.model, seed=draw_seed(cfg.train.seed, rank, start))
    train_shard, val_shard = ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("val")
    shard = ShardCache(config["train_ids"], rank, world, per_worker,
                       np.random.default_rng(draw_seed(cfg.train.seed, rank, start)))
    val_cache: list[dict[str, torch.Tensor]] = []
    epoch_log = EpochLog(run_id)

    def train_batches():
        if not cfg.train.cache_shard:
            return train_shard.iter_torch_batches(batch_size=per_worker, collate_fn=ArrowCollate(collate),
                                                  local_shuffle_buffer_size=4 * per_worker)
        if shard.table is None:
            shard.fill(_tables(train_shard))
        return shard.batches(collate)

    def val_batches():
        if not val_cache:       # every rank scores all of val, in id order, with one fixed draw
            table = sort_by_id(pa.concat_tables(list(_tables(val_shard))))
            val_collate = Collate(cfg.model, seed=cfg.train.seed)
            val_cache.extend(val_collate(table.slice(i, cfg.train.batch_size))
                             for i in range(0, table.num_rows, cfg.train.batch_size))
        return val_cache

    def on_epoch_end(st: FitState, m: dict[str, float]) -> None:
        if rank == 0:
            epoch_log.add(m)
            say(f"epoch {st.epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items() if k != "epoch"))
        last = st.epoch + 1 >= cfg.train.max_epochs or st.bad_epochs >= cfg.train.patience
        if last or (st.epoch + 1) % cfg.train.checkpoint_every == 0:
            if rank == 0:
                report_with_checkpoint(m, model, optimizer, st)
                epoch_log.checkpointed()
            else:
                ray.train.report(m, checkpoint=None)

    state = fit(model, train_batches, val_batches, cfg.train, optimizer=optimizer, state=state,
                device=ray.train.torch.get_device(), on_epoch_end=on_epoch_end)
    return {"epochs": state.epoch + 1, "best_epoch": state.best_epoch, "best_val_auprc_micro": state.best_metric}
