"""Ray, on the training side: Ray Train around `ctt.training.fit`, a task fan-out for the
SVM grid (`ray_map`), and the Ray Data scoring chain of predict (`score_dataset`).

    driver: describe the store -> MLflow run -> TorchTrainer(train_loop_per_worker)
            -> best weights -> val, test scores -> log, register
    worker: its fixed part of train + all of val -> fit(...) -> every k epochs: report(metrics, checkpoint)

Every checkpoint holds the model, the optimizer and the early-stopping state with the
best weights so far, so a restarted worker group goes on from the last epoch.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.fs
import ray
import ray.train
import ray.train.torch
import torch
from ray.data.collate_fn import ArrowBatchCollateFn
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm.auto import tqdm

from ctt import calibration
from ctt import metrics as M
from ctt import tracking
from ctt.config import Config, flatten, from_dict, sections_of, to_dict
from ctt.data import (Collate, FeatureStoreError, ShardCache, StoreInfo, columns_of, describe, draw_seed,
                      dropout_seed, input_stats, sort_by_id)
from ctt.evaluation import Scorer, score_split
from ctt.models import build_model, num_params, set_input_stats
from ctt.predictor import Predictor, member
from ctt.runs import featurizer_params
from ctt.training import FitState, fit, make_optimizer, seed_everything, unwrap
from featurize import store
from featurize.config import use_gpu

__all__ = ["FeatureStoreError", "StorageError", "ray_map", "resume_training", "run_training",
           "score_dataset"]


STORAGE_ENV = "CTT_TRAIN_STORAGE"      # the cluster's default for tracking.storage_path (cluster/ files set it)


class StorageError(ValueError):
    """Ray Train's storage cannot hold this run's checkpoints for every node."""


def train_storage(path: str) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Where Ray Train keeps this run's checkpoints: (storage_path, storage_filesystem).

    Every worker writes there and the driver reads the best checkpoint back, so on several
    nodes it must be shared: a URL (s3://, gs://...) goes through fsspec, with the clients,
    endpoint and retries the feature store uses; a local path must be seen by every node
    (an NFS mount; one machine), checked by a marker file each node reads. With no path, a
    one-node cluster uses ~/ray_results."""
    if "://" in path:
        fs, root = fsspec.core.url_to_fs(path)
        return root, pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    if len(nodes) > 1 and not path:
        raise StorageError(f"the cluster has {len(nodes)} nodes: set tracking.storage_path to storage they all "
                           "share (s3://bucket/prefix, or a folder on a shared filesystem)")
    path = os.path.abspath(os.path.expanduser(path or "~/ray_results"))
    if len(nodes) > 1:
        os.makedirs(path, exist_ok=True)
        marker = os.path.join(path, f".ctt-storage-check-{uuid.uuid4().hex}")
        open(marker, "w").close()
        try:
            # os.path.exists itself: the task's worker imports nothing of the training stack
            check = ray.remote(num_cpus=0)(os.path.exists)
            seen = ray.get([check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
                            .remote(marker) for n in nodes], timeout=120)
        finally:
            os.remove(marker)
        if not all(seen):
            raise StorageError(f"tracking.storage_path={path} is not shared: {seen.count(False)} of {len(nodes)} "
                               "nodes cannot see it; use s3://bucket/prefix or a folder on a shared filesystem")
    return path, None


class ArrowCollate(ArrowBatchCollateFn):
    """A `ctt.data.Collate` in the form Ray Data runs beside its loader."""

    def __init__(self, inner: Collate):
        self.inner = inner

    def __call__(self, batch: pa.Table) -> dict[str, torch.Tensor]:
        return self.inner(batch)


def split_dataset(info: StoreInfo, split: str, model_name: str, materialize: bool) -> ray.data.Dataset:
    cols = columns_of(model_name)
    ds = ray.data.read_parquet(info.path, file_extensions=["parquet"]).select_columns(cols + store.FILTER_COLUMNS)
    ds = ds.map_batches(store.select_split, fn_kwargs={"split": split, "column": info.column, "columns": cols},
                        batch_format="pyarrow", batch_size=None)
    return ds.materialize() if materialize else ds


def _tables(shard) -> Iterator[pa.Table]:
    return shard.iter_batches(batch_format="pyarrow", batch_size=None)


def _report_with_checkpoint(metrics: dict[str, float], model, optimizer, state: FitState) -> None:
    """Stage the checkpoint in a directory that lives only until the synchronous upload is done."""
    with tempfile.TemporaryDirectory(prefix="ctt_ckpt_") as tmp:
        torch.save({"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                    "state": asdict(state)}, Path(tmp) / "state.pt")
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


class EpochLog:
    """Rank 0's epoch metrics into MLflow exactly once, across restarts: an epoch is logged only
    when its checkpoint is stored (a restarted group redoes the epochs after the last one), with
    the time it ended; a group restored from a checkpoint first logs the epochs that checkpoint
    holds and MLflow does not (the driver died between the two)."""

    def __init__(self, run_id: str):
        self.run_id, self.pending = run_id, []

    def _log(self, m: dict[str, float], at: float | None) -> None:
        tracking.log_metrics(self.run_id, {k: v for k, v in m.items() if k != "epoch"}, step=int(m["epoch"]), at=at)

    def restored(self, state: FitState) -> None:
        logged = {step for step, _, _ in tracking.metric_history(self.run_id, "train_loss")}
        for m in state.history:
            if int(m["epoch"]) not in logged:
                self._log(m, None)

    def add(self, m: dict[str, float]) -> None:
        self.pending.append((m, time.time()))

    def checkpointed(self) -> None:
        for m, at in self.pending:
            self._log(m, at)
        self.pending = []


def newest_checkpoint(storage: tuple[str, pyarrow.fs.FileSystem | None], run_name: str) -> ray.train.Checkpoint | None:
    """The newest checkpoint a run wrote to its storage that loads (a kill mid-copy can leave a
    truncated one). Ray registers a reported checkpoint a moment after the upload, so a driver
    killed in between leaves one on storage that Ray does not offer back; its epoch's metrics
    are already in MLflow (`EpochLog`)."""
    fs = storage[1] or pyarrow.fs.LocalFileSystem()
    base = f"{storage[0].rstrip('/')}/{run_name}"
    found = fs.get_file_info(pyarrow.fs.FileSelector(base, allow_not_found=True))
    for info in sorted((i for i in found if i.type == pyarrow.fs.FileType.Directory
                        and i.base_name.startswith("checkpoint_")), key=lambda i: i.base_name, reverse=True):
        ckpt = ray.train.Checkpoint(info.path, filesystem=fs)
        try:
            _load(ckpt)
        except Exception:               # incomplete: the next older one
            continue
        return ckpt
    return None


def _load(ckpt: ray.train.Checkpoint | None) -> dict | None:
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)


def _restore(model, optimizer, rank: int, run_id: str, resume_from: ray.train.Checkpoint | None) -> FitState:
    """The last checkpoint's weights, optimizer and early-stopping state, if this group restarted
    (Ray's, or with --resume the newest on storage, whichever is later)."""
    saved = max((s for s in (_load(ray.train.get_checkpoint()), _load(resume_from)) if s is not None),
                key=lambda s: s["state"]["epoch"], default=None)
    if saved is None:
        return FitState()
    unwrap(model).load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    state = FitState(**saved["state"])
    if rank == 0:
        EpochLog(run_id).restored(state)
        tracking.log_metrics(run_id, {"restored_from_epoch": state.epoch}, step=state.epoch)
        print(f"restored from the checkpoint of epoch {state.epoch}", flush=True)
    return state


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    cfg = from_dict(config["cfg"])
    run_id = config["run_id"]
    os.environ["MLFLOW_TRACKING_URI"] = config["tracking_uri"]   # the driver's store, whatever the node's env
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # Where each rank runs, as a tag of the run (rewritten if a restarted group lands elsewhere).
    tracking.set_tag(run_id, f"ray.worker{rank}.node", ray.get_runtime_context().get_node_id())
    seed_everything(cfg.train.seed)               # same init on every rank; DDP also broadcasts rank 0's
    net = build_model(cfg.model, config["feature_dim"])
    set_input_stats(net, config["input_stats"])
    model = ray.train.torch.prepare_model(net)
    optimizer = make_optimizer(model, cfg.train)
    state = _restore(model, optimizer, rank, run_id, config.get("resume_from"))
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
            print(f"epoch {st.epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in m.items() if k != "epoch"), flush=True)
        last = st.epoch + 1 >= cfg.train.max_epochs or st.bad_epochs >= cfg.train.patience
        if last or (st.epoch + 1) % cfg.train.checkpoint_every == 0:
            if rank == 0:
                _report_with_checkpoint(m, model, optimizer, st)
                epoch_log.checkpointed()
            else:
                ray.train.report(m, checkpoint=None)

    state = fit(model, train_batches, val_batches, cfg.train, optimizer=optimizer, state=state,
                device=ray.train.torch.get_device(), on_epoch_end=on_epoch_end)
    return {"epochs": state.epoch + 1, "best_epoch": state.best_epoch, "best_val_auprc_micro": state.best_metric}


def _trainer(info: StoreInfo, cfg: Config, run_id: str, stats: dict[str, np.ndarray], gpu: bool,
             storage: tuple[str, pyarrow.fs.FileSystem | None], resume: bool) -> TorchTrainer:
    """Named after the MLflow run, so a rerun with the same storage is the same Ray Train run."""
    world, name = cfg.resources.num_workers, f"ctt_{run_id[:12]}"
    ray.data.DataContext.get_current().enable_progress_bars = False   # Train workers have no tqdm
    datasets = {s: split_dataset(info, s, cfg.model.name, cfg.train.materialize) for s in ("train", "val")}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": to_dict(cfg), "run_id": run_id, "feature_dim": info.feature_dim,
                           "tracking_uri": tracking.tracking_uri(), "input_stats": stats,
                           "train_ids": info.train_ids,
                           "resume_from": newest_checkpoint(storage, name) if resume else None},
        scaling_config=ScalingConfig(num_workers=world, use_gpu=gpu,
                                     placement_strategy=cfg.resources.placement_strategy,
                                     resources_per_worker={"CPU": cfg.resources.cpus_per_worker}
                                     | ({"GPU": 1} if gpu else {})),
        datasets=datasets,
        # cache_shard: every worker reads the train split once and keeps its fixed part of it
        dataset_config=DataConfig(datasets_to_split=[] if cfg.train.cache_shard else ["train"]),
        run_config=RunConfig(name=name, storage_path=storage[0], storage_filesystem=storage[1],
                             failure_config=FailureConfig(max_failures=cfg.resources.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )


def resume_training(run_id: str, store_path: str | None = None) -> dict[str, Any]:
    """Continue a training run whose driver died: the same MLflow run, its logged config, and
    its Ray Train storage, from the last checkpoint there."""
    state = tracking.run_state(run_id)
    if state.status == "FINISHED":
        raise FeatureStoreError(f"run {run_id} has already finished; start a new one instead of --resume")
    store_path = store_path or state.params.get("features", "")
    if store_path != state.params.get("features", store_path):
        raise FeatureStoreError(f"run {run_id} trained on {state.params['features']}, not {store_path}")
    return run_training(store_path, from_dict(state.config), resume=run_id)


def run_training(store_path: str, cfg: Config, resume: str = "", info: StoreInfo | None = None,
                 tags: dict[str, str] | None = None) -> dict[str, Any]:
    """One MLflow run: fit with Ray Train, evaluate the best weights on val and test, log it all.
    `resume`: the id of an unfinished run to continue (`resume_training`); `info`: the store as
    the caller already described it; `tags`: more run tags (a repeat's parent and seed)."""
    t0 = time.time()
    name = cfg.model.name
    info = info or describe(store_path, name)
    if info.sizes["train"] < cfg.resources.num_workers:
        raise FeatureStoreError(f"{info.sizes['train']} train trailers cannot feed {cfg.resources.num_workers} workers")
    model = build_model(cfg.model, info.feature_dim)
    cfg.tracking.storage_path = cfg.tracking.storage_path or os.environ.get(STORAGE_ENV, "")
    storage = train_storage(cfg.tracking.storage_path)             # before anything is logged or trained
    stats = input_stats(store_path, cfg.model)
    set_input_stats(model, stats)
    run_name = cfg.tracking.run_name or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    gpu = use_gpu(cfg.resources.use_gpu, ray.cluster_resources().get("GPU", 0))
    tags = {"method": name, "model": name, "features": store_path, "kind": "train"} | (tags or {})
    with tracking.open_run(cfg.tracking.experiment, run_name, tags, resume=resume) as run_id:
        if not resume:
            _log_inputs(run_id, model, info, cfg, gpu)
        t_fit = time.time()
        result = _trainer(info, cfg, run_id, stats, gpu, storage, bool(resume)).fit()
        fit_s = time.time() - t_fit
        with result.checkpoint.as_directory() as d:
            state = FitState(**torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)["state"])
        model.load_state_dict(state.best_state)
        summary = _evaluate_and_log(model, info, cfg, run_id, state, fit_s)
    return summary | {"run_id": run_id, "run_name": run_name, "model": name, "tracking_uri": tracking.tracking_uri(),
                      "checkpoint": result.checkpoint.path,
                      "num_params": num_params(model), "wall_s": round(time.time() - t0, 1)} | tracking.ui_links(run_id)


def _log_inputs(run_id: str, model: torch.nn.Module, info: StoreInfo, cfg: Config, gpu: bool) -> None:
    """Params (the sections this run read, and the settings that made its store as featurizer.*),
    the store as the run's dataset input, the resolved config and the featurizer settings."""
    tracking.log_params(run_id, flatten(sections_of(cfg, "train")) | featurizer_params(info.settings)
                        | {"num_params": num_params(model), "feature_dim": info.feature_dim, "features": info.path,
                           "n_train": info.sizes["train"], "n_val": info.sizes["val"], "n_test": info.sizes["test"],
                           "use_gpu": gpu})
    tracking.log_store_input(info.path, info.settings, store.files(info.path))
    tracking.log_dict(run_id, to_dict(cfg), "config/resolved_config.json")
    tracking.log_dict(run_id, info.settings, "config/featurizer.json")


def _evaluate_and_log(model: torch.nn.Module, info: StoreInfo, cfg: Config, run_id: str, state: FitState,
                      fit_s: float) -> dict[str, Any]:
    """Val predictions and thresholds, test metrics beside random scores, the model."""
    scorer = Scorer(model, cfg.model, cfg.train.seed)
    val_ids, val_probs, val_y = score_split(scorer, info.path, "val")
    ids, probs, y = score_split(scorer, info.path, "test")
    params, uncalibrated = {}, {}
    if cfg.train.calibration != "none":               # fitted on val, applied to both (beyond the paper)
        params = calibration.fit(val_y, val_probs, cfg.train.calibration)
        uncalibrated = {"test_ece_uncalibrated": M.ece(y, probs)}
        val_probs, probs = calibration.apply(val_probs, params), calibration.apply(probs, params)
        tracking.log_dict(run_id, params, "model/calibration.json")
    tracking.log_predictions(run_id, "val", val_ids, val_y, val_probs)
    thresholds = tracking.log_thresholds(run_id, val_y, val_probs)
    test = M.evaluate(y, probs, prefix="test_", thresholds=thresholds) | uncalibrated
    random_baseline = M.evaluate(y, np.random.default_rng(cfg.train.seed).random(y.shape), prefix="test_")
    tracking.log_evaluation(run_id, "test", ids, y, probs, test | {
        "best_epoch": state.best_epoch, "epochs_trained": state.epoch + 1,
        "best_val_auprc_micro": state.best_metric, "fit_s": fit_s,
        "s_per_epoch": fit_s / max(1, state.epoch + 1)},
        extra={"random_baseline": random_baseline, "model": cfg.model.name})
    trained = member(model, cfg, info.feature_dim, info.settings, run_id, params)
    model_uri = tracking.log_servable(Predictor(run_id, {trained.kind: trained}, 1.0, thresholds))
    registered = (tracking.register(model_uri, run_id, cfg.tracking.register_as, cfg.tracking.register_alias,
                                    info.settings, thresholds) if cfg.tracking.register_as else None)
    ended_by = state.ended_by(cfg.train)
    tracking.set_tag(run_id, "ended_by", ended_by)
    return {"model_uri": model_uri, "epochs_trained": state.epoch + 1, "best_epoch": state.best_epoch,
            "ended_by": ended_by,
            "fit_s": round(fit_s, 1), "test": test, "random_baseline": random_baseline, "registered": registered}


def ray_map(fn: Callable[..., Any], items: Sequence[Any], shared: Any, num_cpus: float, desc: str) -> list[Any]:
    """[fn(shared, *item) for item in items] as Ray tasks, `shared` put in the object store
    once. Progress: a bar in a terminal; in logs, a line every 10 % of the tasks (or 10 s)."""
    task = ray.remote(num_cpus=num_cpus)(fn)
    ref = ray.put(shared)
    refs = [task.remote(ref, *item) for item in items]
    bar = tqdm(total=len(refs), desc=desc, unit="task", disable=not sys.stderr.isatty())
    pending, t0, shown = list(refs), time.time(), 0
    while pending:
        _, pending = ray.wait(pending, num_returns=min(len(pending), max(1, len(refs) // 10)), timeout=10)
        done = len(refs) - len(pending)
        if done > shown and bar.disable:
            print(f"{desc}: {done}/{len(refs)} tasks ({time.time() - t0:.0f} s)", flush=True)
        bar.update(done - shown)
        shown = done
    bar.close()
    return ray.get(refs)


def score_dataset(store_path: str, columns: list[str], scorer_cls: type, args: tuple, output: str) -> None:
    """Store rows -> `scorer_cls(*args)` in an actor pool -> a Parquet dataset at `output`."""
    ds = ray.data.read_parquet(store_path, file_extensions=["parquet"]).select_columns(columns)
    ds = ds.map_batches(scorer_cls, fn_constructor_args=args, batch_format="pyarrow", batch_size=16,
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=2))
    ds.write_parquet(output)
