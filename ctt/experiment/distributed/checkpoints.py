"""Where a training run's checkpoints live and how a run picks up from them: the storage
every node can reach, the upload of an epoch's state, the newest loadable checkpoint after
a killed driver, and rank 0's epoch metrics logged exactly once across restarts.

Every checkpoint holds the model, the optimizer and the early-stopping state with the
best weights so far, so a restarted worker group goes on from the last epoch.
"""
from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import fsspec
import pyarrow.fs
import ray
import ray.train
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ctt.experiment.tracking import reading, recording
from ctt.training import FitState, unwrap

Storage = tuple[str, "pyarrow.fs.FileSystem | None"]      # (storage_path, storage_filesystem) as Ray Train takes them


STORAGE_ENV = "CTT_TRAIN_STORAGE"      # the cluster's default for tracking.storage_path (cluster/ files set it)


class StorageError(ValueError):
    """Ray Train's storage cannot hold this run's checkpoints for every node."""


def train_storage(path: str) -> Storage:
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


def report_with_checkpoint(metrics: dict[str, float], model, optimizer, state: FitState) -> None:
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
        recording.log_metrics(self.run_id, {k: v for k, v in m.items() if k != "epoch"}, step=int(m["epoch"]), at=at)

    def restored(self, state: FitState) -> None:
        logged = {step for step, _, _ in reading.metric_history(self.run_id, "train_loss")}
        for m in state.history:
            if int(m["epoch"]) not in logged:
                self._log(m, None)

    def add(self, m: dict[str, float]) -> None:
        self.pending.append((m, time.time()))

    def checkpointed(self) -> None:
        for m, at in self.pending:
            self._log(m, at)
        self.pending = []


def newest_checkpoint(storage: Storage, run_name: str) -> ray.train.Checkpoint | None:
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
            load_state(ckpt)
        except Exception:               # incomplete: the next older one
            continue
        return ckpt
    return None


def load_state(ckpt: ray.train.Checkpoint | None) -> dict | None:
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=False)


def restore(model, optimizer, rank: int, run_id: str, resume_from: ray.train.Checkpoint | None) -> FitState:
    """The last checkpoint's weights, optimizer and early-stopping state, if this group restarted
    (Ray's, or with --resume the newest on storage, whichever is later)."""
    saved = max((s for s in (load_state(ray.train.get_checkpoint()), load_state(resume_from)) if s is not None),
                key=lambda s: s["state"]["epoch"], default=None)
    if saved is None:
        return FitState()
    unwrap(model).load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    state = FitState(**saved["state"])
    if rank == 0:
        EpochLog(run_id).restored(state)
        recording.log_metrics(run_id, {"restored_from_epoch": state.epoch}, step=state.epoch)
        print(f"restored from the checkpoint of epoch {state.epoch}", flush=True)
    return state
