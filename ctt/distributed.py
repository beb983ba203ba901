"""Ray Train plumbing around `ctt.training.fit`: DDP workers, shards, checkpoints, MLflow.

    driver: start MLflow run -> TorchTrainer(train_loop_per_worker) -> best weights -> val, test -> log
    worker: its part of train + all of val -> fit(...) -> every k epochs: report(metrics, checkpoint)

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
from ctt.data import Collate, _flat_sequences
from ctt.data import labels as collate_labels
from ctt.genres import NUM_GENRES
from ctt.models import SPEC_BINS, SPEC_FRAMES, build_model, input_column, num_params
from ctt.training import FitState, fit, make_optimizer, predict_table, seed_everything, unwrap
from featurize import store

class FeatureStoreError(ValueError):
    """The store cannot be trained on (missing, or without the needed splits)."""


class ArrowCollate(ArrowBatchCollateFn):
    """A `ctt.data.Collate` in the form Ray Data runs beside its loader."""

    def __init__(self, inner: Collate):
        self.inner = inner

    def __call__(self, batch: pa.Table) -> dict[str, torch.Tensor]:
        return self.inner(batch)


def split_filter(split: str, model_name: str) -> pc.Expression:
    """Rows of `split` that the model can read: audio models leave out trailers without audio."""
    expr = pc.field("split") == split
    if input_column(model_name) == "spectrograms":
        expr = expr & pc.field("has_audio") & (pc.field("num_windows") > 0)
    return expr


def columns_of(model_name: str) -> list[str]:
    return ["trailer_id", "genres", input_column(model_name)]


def _select(table: pa.Table, split: str, model_name: str) -> pa.Table:
    return table.filter(split_filter(split, model_name)).select(columns_of(model_name))


def split_dataset(store_path: str, split: str, model_name: str, materialize: bool) -> ray.data.Dataset:
    ds = ray.data.read_parquet(store_path, file_extensions=["parquet"]).select_columns(
        columns_of(model_name) + ["split", "has_audio", "num_windows"])
    ds = ds.map_batches(_select, fn_kwargs={"split": split, "model_name": model_name},
                        batch_format="pyarrow", batch_size=None)
    return ds.materialize() if materialize else ds


def _sorted(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[("trailer_id", "ascending")]))


def mean_spectrogram(store_path: str, split: str = "train") -> np.ndarray:
    """The train split's mean spectrogram (130 x 513), read in batches (paper section 3.3)."""
    total, count = np.zeros(store.SPEC_SIZE, np.float64), 0
    for t in store.iter_batches(store_path, ["spectrograms"], split_filter(split, "ctt-s"), batch_size=16):
        flat, _ = _flat_sequences(t.column("spectrograms"))
        total += flat.astype(np.float64).sum(0)
        count += len(flat)
    return (total / max(count, 1)).astype(np.float32).reshape(SPEC_FRAMES, SPEC_BINS)


def _report_with_checkpoint(metrics: dict[str, float], model, optimizer, state: FitState) -> None:
    """Stage the checkpoint in a directory that lives only until the synchronous upload is done."""
    with tempfile.TemporaryDirectory(prefix="ctt_ckpt_") as tmp:
        torch.save({"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                    "state": asdict(state)}, Path(tmp) / "state.pt")
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    cfg = from_dict(config["cfg"])
    os.environ["MLFLOW_TRACKING_URI"] = config["tracking_uri"]   # the driver's store, whatever the node's env
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # Where each rank runs, as a tag of the run (rewritten if a restarted group lands elsewhere).
    tracking.set_tag(config["run_id"], f"ray.worker{rank}.node", ray.get_runtime_context().get_node_id())
    seed_everything(cfg.train.seed)               # same init on every rank; DDP also broadcasts rank 0's
    device = ray.train.torch.get_device()
    net = build_model(cfg.model, config["feature_dim"])
    if config.get("mean_spectrogram") is not None:
        net.set_mean(torch.from_numpy(config["mean_spectrogram"]))
    model = ray.train.torch.prepare_model(net)
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
            print(f"restored from the checkpoint of epoch {state.epoch}", flush=True)
    seed_everything(cfg.train.seed + 1000 * (state.epoch + 1) + rank)   # per-rank dropout/shuffle streams

    per_worker = max(1, cfg.train.batch_size // world)
    collate = Collate(cfg.model, seed=cfg.train.seed + 7919 * rank + state.epoch + 1)
    train_data = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    val_cache: list[dict[str, torch.Tensor]] = []
    shard_cache: list[pa.Table] = []
    rng = np.random.default_rng(cfg.train.seed + 7919 * rank + state.epoch + 1)

    def my_rows() -> pa.Table:
        # A fixed partition of the sorted train ids (rank-strided), read once: the same
        # rows land on the same rank in every run, so a seeded run repeats exactly.
        mine = pa.array(config["train_ids"][rank::world])
        parts = [t.filter(pc.is_in(t["trailer_id"], value_set=mine))
                 for t in train_data.iter_batches(batch_format="pyarrow", batch_size=None)]
        return _sorted(pa.concat_tables(parts))

    def train_batches():
        if not cfg.train.cache_shard:
            return train_data.iter_torch_batches(batch_size=per_worker, collate_fn=ArrowCollate(collate),
                                                 local_shuffle_buffer_size=4 * per_worker)
        if not shard_cache:
            shard_cache.append(my_rows())
        table = shard_cache[0]
        order = rng.permutation(table.num_rows)[:config["rows_per_rank"]]   # equal steps on every rank
        return (collate(table.take(order[i:i + per_worker])) for i in range(0, len(order), per_worker))

    def val_batches():
        if not val_cache:       # every rank scores all of val, in id order, with one fixed draw
            table = _sorted(pa.concat_tables(list(val_shard.iter_batches(batch_format="pyarrow", batch_size=None))))
            val_collate = Collate(cfg.model, seed=cfg.train.seed)
            val_cache.extend(val_collate(table.slice(i, cfg.train.batch_size))
                             for i in range(0, table.num_rows, cfg.train.batch_size))
        return val_cache

    def on_epoch_end(st: FitState, m: dict[str, float]) -> None:
        if rank == 0:
            tracking.log_metrics(config["run_id"], {k: v for k, v in m.items() if k != "epoch"}, step=st.epoch)
            print(f"epoch {st.epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items() if k != "epoch"), flush=True)
        last = st.epoch + 1 >= cfg.train.max_epochs or st.bad_epochs >= cfg.train.patience
        if last or (st.epoch + 1) % cfg.train.checkpoint_every == 0:
            if rank == 0:
                _report_with_checkpoint(m, model, optimizer, st)
            else:
                ray.train.report(m, checkpoint=None)

    state = fit(model, train_batches, val_batches, cfg.train, optimizer=optimizer, state=state,
                device=device, on_epoch_end=on_epoch_end)
    return {"epochs": state.epoch + 1, "best_epoch": state.best_epoch, "best_val_auprc_micro": state.best_metric}


def _use_gpu(flag: str) -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0 if flag == "auto" else flag == "true"


def evaluate_split(model: torch.nn.Module, store_path: str, split: str, cfg: Config,
                   batch_size: int = 32) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Probabilities for every readable trailer of a split, streamed from the store.

    Audio models average `model.test_draws` draws of p spectrograms (paper: 10)."""
    name = cfg.model.name
    draws = cfg.model.test_draws if input_column(name) == "spectrograms" else 1
    collate = Collate(cfg.model, seed=cfg.train.seed + 12345)
    ids, probs, ys = [], [], []
    for t in store.iter_batches(store_path, columns_of(name), split_filter(split, name), batch_size):
        p = predict_table(model, collate, t, draws)
        ids += t.column("trailer_id").to_pylist()
        probs.append(p)
        ys.append(collate_labels(t))
    if not ids:
        return [], np.zeros((0, NUM_GENRES)), np.zeros((0, NUM_GENRES))
    order = np.argsort(ids, kind="stable")
    return [ids[i] for i in order], np.concatenate(probs)[order], np.concatenate(ys)[order]


def split_sizes(store_path: str, model_name: str) -> dict[str, int]:
    cols = ["split", "has_audio", "num_windows"]
    t = store.read_table(store_path, columns=cols)
    return {s: t.filter(split_filter(s, model_name)).num_rows for s in ("train", "val", "test")}


def run_training(store_path: str, cfg: Config) -> dict[str, Any]:
    """One MLflow run: fit with Ray Train, evaluate the best weights on val and test, log it all."""
    import mlflow
    t0 = time.time()
    name = cfg.model.name
    settings = store.settings_of(store_path)
    if settings is None:
        raise FeatureStoreError(f"{store_path} is not a feature store (no {store.SETTINGS_FILE}); run jobs/featurize.py first")
    dim = settings["settings"]["feature_dim"]
    sizes = split_sizes(store_path, name)
    what = "trailers with audio" if input_column(name) == "spectrograms" else "trailers"
    for split in ("train", "val", "test"):
        if not sizes.get(split):
            raise FeatureStoreError(f"{store_path} has no '{split}' {what} for {name} (sizes: {sizes}); "
                                    "the manifest needs a split column")
    world = cfg.resources.num_workers
    if sizes["train"] < world:
        raise FeatureStoreError(f"{sizes['train']} train {what} cannot feed {world} workers")

    exp_id = tracking.connect(cfg.tracking.experiment)
    model = build_model(cfg.model, dim)
    mean = None
    if input_column(name) == "spectrograms":
        mean = mean_spectrogram(store_path)
        model.set_mean(torch.from_numpy(mean))
    train_ids = sorted(store.read_table(store_path, columns=["trailer_id"],
                                        filter=split_filter("train", name)).column(0).to_pylist())
    run_name = cfg.tracking.run_name or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    use_gpu = _use_gpu(cfg.resources.use_gpu)
    with mlflow.start_run(run_name=run_name, experiment_id=exp_id) as run:
        run_id = run.info.run_id
        mlflow.set_tags({"method": name, "model": name, "features": store_path, "kind": "train"})
        tracking.log_params(run_id, flatten(to_dict(cfg)) | {
            "num_params": num_params(model), "feature_dim": dim, "features": store_path,
            "featurizer": settings, "n_train": sizes["train"], "n_val": sizes["val"], "n_test": sizes["test"],
            "use_gpu": use_gpu})
        mlflow.log_dict(to_dict(cfg), "config/resolved_config.json")
        mlflow.log_dict(settings, "config/featurizer.json")

        ray.data.DataContext.get_current().enable_progress_bars = False
        datasets = {s: split_dataset(store_path, s, name, cfg.train.materialize) for s in ("train", "val")}
        storage = cfg.tracking.storage_path or os.path.expanduser("~/ray_results")
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"cfg": to_dict(cfg), "run_id": run_id, "feature_dim": dim,
                               "tracking_uri": tracking.tracking_uri(), "mean_spectrogram": mean,
                               "train_ids": train_ids, "rows_per_rank": len(train_ids) // world},
            scaling_config=ScalingConfig(num_workers=world, use_gpu=use_gpu,
                                         placement_strategy=cfg.resources.placement_strategy,
                                         resources_per_worker={"CPU": cfg.resources.cpus_per_worker}
                                         | ({"GPU": 1} if use_gpu else {})),
            datasets=datasets,
            # cache_shard: every worker reads the train split once and keeps its fixed part of it
            dataset_config=DataConfig(datasets_to_split=[] if cfg.train.cache_shard else ["train"]),
            run_config=RunConfig(name=f"ctt_{run_id[:12]}", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=cfg.resources.max_failures),
                                 checkpoint_config=CheckpointConfig(num_to_keep=2)),
        )
        t_fit = time.time()
        result = trainer.fit()
        fit_s = time.time() - t_fit
        with result.checkpoint.as_directory() as d:
            saved = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)
        state = FitState(**saved["state"])
        model.load_state_dict(state.best_state)
        val_ids, val_probs, val_y = evaluate_split(model, store_path, "val", cfg)
        tracking.log_predictions(run_id, "val", val_ids, val_y, val_probs)
        thresholds = tracking.log_thresholds(run_id, val_y, val_probs)
        ids, probs, y = evaluate_split(model, store_path, "test", cfg)
        test = M.evaluate(y, probs, prefix="test_")
        rng = np.random.default_rng(cfg.train.seed)
        random_baseline = M.evaluate(y, rng.random(y.shape), prefix="test_")
        tracking.log_evaluation(run_id, "test", ids, y, probs, test | {
            "best_epoch": state.best_epoch, "epochs_trained": state.epoch + 1,
            "best_val_auprc_micro": state.best_metric, "fit_s": fit_s,
            "s_per_epoch": fit_s / max(1, state.epoch + 1)},
            extra={"random_baseline": random_baseline, "model": name})
        model_uri = tracking.log_torch_model(model, {"feature_dim": dim, **to_dict(cfg.model)})
        registered = (tracking.register(model_uri, run_id, cfg.tracking.register_as, cfg.tracking.register_alias,
                                        settings, thresholds) if cfg.tracking.register_as else None)
        summary = {"run_id": run_id, "experiment_id": exp_id, "run_name": run_name, "model_uri": model_uri,
                   "tracking_uri": tracking.tracking_uri(), "num_params": num_params(model),
                   "epochs_trained": state.epoch + 1, "best_epoch": state.best_epoch, "fit_s": round(fit_s, 1),
                   "test": test, "random_baseline": random_baseline, "registered": registered,
                   "wall_s": round(time.time() - t0, 1)}
    return summary
