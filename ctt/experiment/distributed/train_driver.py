"""The training driver: one MLflow run around a Ray Train fit, then the best weights
scored on val and test, and the model logged (and registered when asked).

    driver: describe the store -> record_run -> TorchTrainer(train_loop_per_worker)
            -> best weights -> val, test scores -> log, register
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import ray.train
import torch
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ctt import calibration
from ctt import metrics as M
from ctt.config import Config, from_dict
from ctt.data import FeatureStoreError, StoreInfo, describe_store, input_stats
from ctt.evaluation import Scorer, score_split
from ctt.experiment.distributed.checkpoints import STORAGE_ENV, Storage, newest_checkpoint, train_storage
from ctt.experiment.distributed.train_worker import split_dataset, train_loop_per_worker
from ctt.experiment.tracking import connection, model_package, reading, recording, registry
from ctt.models import build_model, num_params, set_input_stats
from ctt.predictor import Predictor, member
from ctt.thresholds import best_f1_thresholds
from ctt.training import FitState
from featurize import store
from featurize.config import use_gpu


def _trainer(info: StoreInfo, cfg: Config, run_id: str, stats: dict[str, np.ndarray], gpu: bool,
             storage: Storage, resume: bool) -> TorchTrainer:
    """Named after the MLflow run, so a rerun with the same storage is the same Ray Train run."""
    world, name = cfg.resources.num_workers, f"ctt_{run_id[:12]}"
    ray.data.DataContext.get_current().enable_progress_bars = False   # Train workers have no tqdm
    datasets = {s: split_dataset(info, s, cfg.model.name, cfg.train.materialize) for s in ("train", "val")}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg, "run_id": run_id, "feature_dim": info.feature_dim,
                           "tracking_uri": connection.tracking_uri(), "input_stats": stats,
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
    state = reading.run_state(run_id)
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
    info = info or describe_store(store_path, name)
    if info.sizes["train"] < cfg.resources.num_workers:
        raise FeatureStoreError(f"{info.sizes['train']} train trailers cannot feed {cfg.resources.num_workers} workers")
    model = build_model(cfg.model, info.feature_dim)
    cfg.tracking.storage_path = cfg.tracking.storage_path or os.environ.get(STORAGE_ENV, "")
    storage = train_storage(cfg.tracking.storage_path)             # before anything is logged or trained
    stats = input_stats(store_path, cfg.model)
    set_input_stats(model, stats)
    gpu = use_gpu(cfg.resources.use_gpu, ray.cluster_resources().get("GPU", 0))
    tags = {"method": name, "model": name, "features": store_path} | (tags or {})
    params = {"num_params": num_params(model), "feature_dim": info.feature_dim, "features": info.path,
              "n_train": info.sizes["train"], "n_val": info.sizes["val"], "n_test": info.sizes["test"], "use_gpu": gpu}
    run_name = recording.run_name(cfg, name)
    with recording.record_run("train", run_name, cfg=cfg, job="train", params=params, tags=tags, resume=resume,
                              store=recording.StoreInput(info.path, info.settings, store.files(info.path))) as run_id:
        if not resume:
            recording.log_dict(run_id, info.settings, "config/featurizer.json")
        t_fit = time.time()
        result = _trainer(info, cfg, run_id, stats, gpu, storage, bool(resume)).fit()
        fit_s = time.time() - t_fit
        with result.checkpoint.as_directory() as d:
            state = FitState(**torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)["state"])
        model.load_state_dict(state.best_state)
        summary = _evaluate_and_log(model, info, cfg, run_id, state, fit_s)
    return summary | {"run_id": run_id, "run_name": run_name, "model": name, "tracking_uri": connection.tracking_uri(),
                      "checkpoint": result.checkpoint.path,
                      "num_params": num_params(model), "wall_s": round(time.time() - t0, 1)} | connection.ui_links(run_id)


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
        recording.log_dict(run_id, params, "model/calibration.json")
    recording.log_predictions(run_id, "val", val_ids, val_y, val_probs)
    thresholds = best_f1_thresholds(val_y, val_probs)
    recording.log_thresholds(run_id, thresholds)
    test = M.evaluate(y, probs, prefix="test_", thresholds=thresholds) | uncalibrated
    random_baseline = M.evaluate(y, np.random.default_rng(cfg.train.seed).random(y.shape), prefix="test_")
    recording.log_evaluation(run_id, "test", ids, y, probs, test | {
        "best_epoch": state.best_epoch, "epochs_trained": state.epoch + 1,
        "best_val_auprc_micro": state.best_metric, "fit_s": fit_s,
        "s_per_epoch": fit_s / max(1, state.epoch + 1)},
        extra={"random_baseline": random_baseline, "model": cfg.model.name})
    trained = member(model, cfg, info.feature_dim, info.settings, run_id, params)
    model_uri = model_package.log_servable(Predictor(run_id, {trained.kind: trained}, 1.0, thresholds))
    registered = (registry.register(model_uri, run_id, cfg.tracking.register_as, cfg.tracking.register_alias,
                                    info.settings, thresholds) if cfg.tracking.register_as else None)
    ended_by = state.ended_by(cfg.train)
    recording.set_tag(run_id, "ended_by", ended_by)
    return {"model_uri": model_uri, "epochs_trained": state.epoch + 1, "best_epoch": state.best_epoch,
            "ended_by": ended_by,
            "fit_s": round(fit_s, 1), "test": test, "random_baseline": random_baseline, "registered": registered}
