"""Ray Train plumbing around `ctt.training.fit`: DDP workers, shards, checkpoints, MLflow.

    driver: start MLflow run -> TorchTrainer(train_loop_per_worker) -> best weights -> test set -> log
    worker: shard of train + all of val -> fit(...) -> every epoch: report(metrics, checkpoint)

Every checkpoint holds the model, the optimizer and the early-stopping state with
the best weights so far, so a restarted worker group goes on from the last epoch.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.train
import ray.train.torch
import torch
from ray.data.collate_fn import ArrowBatchCollateFn
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ctt import metrics as M
from ctt import tracking
from ctt.config import Config, flatten, from_dict, to_dict
from ctt.data import collate_frames
from ctt.models import build_model, num_params
from ctt.training import FitState, fit, make_optimizer, predict, seed_everything, unwrap
from featurize import store

COLUMNS = ["trailer_id", "frames", "genres"]


class FeatureStoreError(ValueError):
    """The store cannot be trained on (missing, or without the needed splits)."""


class FramesCollate(ArrowBatchCollateFn):
    def __init__(self, min_len: int):
        self.min_len = min_len

    def __call__(self, batch: pa.Table) -> dict[str, torch.Tensor]:
        return collate_frames(batch, self.min_len)


def _split(table: pa.Table, split: str) -> pa.Table:
    return table.filter(pc.equal(table["split"], split)).select(COLUMNS)


def split_dataset(store_path: str, split: str, materialize: bool) -> ray.data.Dataset:
    ds = ray.data.read_parquet(store_path, file_extensions=["parquet"])
    ds = ds.map_batches(_split, fn_kwargs={"split": split}, batch_format="pyarrow", batch_size=None)
    return ds.materialize() if materialize else ds


def _save_checkpoint(model, optimizer, state: FitState) -> ray.train.Checkpoint:
    tmp = tempfile.mkdtemp(prefix="ctt_ckpt_")
    torch.save({"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "state": asdict(state)}, Path(tmp) / "state.pt")
    return ray.train.Checkpoint.from_directory(tmp)


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    cfg = from_dict(config["cfg"])
    os.environ["MLFLOW_TRACKING_URI"] = config["tracking_uri"]   # the driver's store, whatever the node's env
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    seed_everything(cfg.train.seed)               # same init on every rank; DDP also broadcasts rank 0's
    device = ray.train.torch.get_device()
    model = ray.train.torch.prepare_model(build_model(cfg.model, config["feature_dim"]))
    optimizer = make_optimizer(model, cfg.train)
    state = FitState()
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            saved = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)
        unwrap(model).load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = FitState(**saved["state"])
        if rank == 0:
            tracking.log_metrics(config["run_id"], {"restored_from_epoch": state.epoch}, step=state.epoch)
    seed_everything(cfg.train.seed + 1000 * (state.epoch + 1) + rank)   # per-rank dropout/shuffle streams

    per_worker = max(1, cfg.train.batch_size // world)
    collate = FramesCollate(cfg.model.f)
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    val_cache: list[dict[str, torch.Tensor]] = []

    shard_cache: list[pa.Table] = []
    rng = np.random.default_rng(cfg.train.seed + 7919 * rank + state.epoch + 1)

    def train_batches():
        if not cfg.train.cache_shard:
            return train_shard.iter_torch_batches(batch_size=per_worker, collate_fn=collate,
                                                  local_shuffle_buffer_size=4 * per_worker)
        if not shard_cache:                       # read the shard once, reshuffle it locally every epoch
            shard_cache.append(pa.concat_tables(train_shard.iter_batches(batch_format="pyarrow", batch_size=None)))
        table = shard_cache[0]
        order = rng.permutation(table.num_rows)
        return (collate(table.take(order[i:i + per_worker])) for i in range(0, len(order), per_worker))

    def val_batches():
        if not val_cache:                         # every rank scores all of val: identical early stopping
            val_cache.extend(val_shard.iter_torch_batches(batch_size=cfg.train.batch_size, collate_fn=collate))
        return val_cache

    def on_epoch_end(st: FitState, m: dict[str, float]) -> None:
        if rank == 0:
            tracking.log_metrics(config["run_id"], {k: v for k, v in m.items() if k != "epoch"}, step=st.epoch)
            print(f"epoch {st.epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items() if k != "epoch"), flush=True)
        last = st.epoch + 1 >= cfg.train.max_epochs or st.bad_epochs >= cfg.train.patience
        if last or (st.epoch + 1) % cfg.train.checkpoint_every == 0:
            ray.train.report(m, checkpoint=_save_checkpoint(model, optimizer, st) if rank == 0 else None)

    state = fit(model, train_batches, val_batches, cfg.train, optimizer=optimizer, state=state,
                device=device, on_epoch_end=on_epoch_end)
    return {"epochs": state.epoch + 1, "best_epoch": state.best_epoch, "best_val_auprc_micro": state.best_metric}


def _use_gpu(flag: str) -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0 if flag == "auto" else flag == "true"


def evaluate_split(model: torch.nn.Module, store_path: str, split: str, min_len: int,
                   batch_size: int = 64) -> tuple[list[str], np.ndarray, np.ndarray]:
    table = store.read_table(store_path, columns=["trailer_id", "split", "frames", "genres"])
    table = _split(table, split)
    ids = table.column("trailer_id").to_pylist()
    batches = (collate_frames(table.slice(i, batch_size), min_len) for i in range(0, table.num_rows, batch_size))
    probs, y = predict(model, batches, torch.device("cpu"))
    return ids, probs, y


def run_training(store_path: str, cfg: Config) -> dict[str, Any]:
    """One MLflow run: fit with Ray Train, evaluate the best weights on the test split, log it all."""
    import mlflow
    t0 = time.time()
    settings = store.settings_of(store_path)
    if settings is None:
        raise FeatureStoreError(f"{store_path} is not a feature store (no {store.SETTINGS_FILE}); run jobs/featurize.py first")
    dim = settings["settings"]["feature_dim"]
    counts = store.read_table(store_path, columns=["split"]).column("split").value_counts().to_pylist()
    sizes = {c["values"]: c["counts"] for c in counts}
    for split in ("train", "val", "test"):
        if not sizes.get(split):
            raise FeatureStoreError(f"{store_path} has no '{split}' trailers (splits: {sizes}); the manifest needs a split column")

    exp_id = tracking.connect(cfg.tracking.experiment)
    model = build_model(cfg.model, dim)
    run_name = cfg.tracking.run_name or f"{cfg.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    use_gpu = _use_gpu(cfg.resources.use_gpu)
    with mlflow.start_run(run_name=run_name, experiment_id=exp_id) as run:
        run_id = run.info.run_id
        mlflow.set_tags({"model": cfg.model.name, "features": store_path})
        tracking.log_params(run_id, flatten(to_dict(cfg)) | {
            "num_params": num_params(model), "feature_dim": dim, "features": store_path,
            "featurizer": settings, "n_train": sizes["train"], "n_val": sizes["val"], "n_test": sizes["test"],
            "use_gpu": use_gpu})
        mlflow.log_dict(to_dict(cfg), "config/resolved_config.json")
        mlflow.log_dict(settings, "config/featurizer.json")

        ray.data.DataContext.get_current().enable_progress_bars = False
        datasets = {s: split_dataset(store_path, s, cfg.train.materialize) for s in ("train", "val")}
        storage = cfg.tracking.storage_path or os.path.expanduser("~/ray_results")
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"cfg": to_dict(cfg), "run_id": run_id, "feature_dim": dim,
                               "tracking_uri": tracking.tracking_uri()},
            scaling_config=ScalingConfig(num_workers=cfg.resources.num_workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": cfg.resources.cpus_per_worker}
                                         | ({"GPU": 1} if use_gpu else {})),
            datasets=datasets,
            dataset_config=DataConfig(datasets_to_split=["train"]),
            run_config=RunConfig(name=f"ctt_{run_id[:12]}", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=cfg.resources.max_failures),
                                 checkpoint_config=CheckpointConfig(num_to_keep=2)),
        )
        result = trainer.fit()
        with result.checkpoint.as_directory() as d:
            saved = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)
        state = FitState(**saved["state"])
        model.load_state_dict(state.best_state)
        ids, probs, y = evaluate_split(model, store_path, "test", cfg.model.f)
        test = M.evaluate(y, probs, prefix="test_")
        rng = np.random.default_rng(cfg.train.seed)
        random_baseline = M.evaluate(y, rng.random(y.shape), prefix="test_")
        tracking.log_evaluation(run_id, "test", ids, y, probs, test | {
            "best_epoch": state.best_epoch, "epochs_trained": state.epoch + 1,
            "best_val_auprc_micro": state.best_metric},
            extra={"random_baseline": random_baseline, "model": cfg.model.name})
        model_uri = tracking.log_torch_model(model, {"feature_dim": dim, **to_dict(cfg.model)})
        summary = {"run_id": run_id, "experiment_id": exp_id, "run_name": run_name, "model_uri": model_uri,
                   "tracking_uri": tracking.tracking_uri(), "num_params": num_params(model),
                   "epochs_trained": state.epoch + 1, "best_epoch": state.best_epoch,
                   "test": test, "random_baseline": random_baseline, "wall_s": round(time.time() - t0, 1)}
    return summary
