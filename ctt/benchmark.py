"""Training cost, side by side: CTT-MMC-C vs the LSTM on the same features, and Ray Train
with 1 vs 2 workers on the same store. Used by `jobs/benchmark.py`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctt.config import ModelConfig, TrainConfig
from ctt.data import Collate
from ctt.genres import GENRES
from ctt.models import build_model, num_params
from ctt.training import make_optimizer, train_one_epoch


def synthetic_rows(n: int, dim: int, min_t: int, max_t: int, seed: int = 0) -> list[dict[str, Any]]:
    """Keyframe sequences of LMTD-like lengths with random features and labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = int(rng.integers(min_t, max_t + 1))
        k = int(rng.integers(1, 4))
        rows.append({"trailer_id": f"s{i:05d}", "frames": rng.normal(size=(t, dim)).astype(np.float32),
                     "genres": sorted(rng.choice(GENRES, k, replace=False).tolist()),
                     "split": "train" if i % 10 < 7 else ("val" if i % 10 < 8 else "test")})
    return rows


def _batches(rows: list[dict], cfg: ModelConfig, batch_size: int) -> list[dict[str, torch.Tensor]]:
    import pyarrow as pa
    dim = rows[0]["frames"].shape[1]
    frames = pa.array([r["frames"].tolist() for r in rows], type=pa.list_(pa.list_(pa.float32(), dim)))
    table = pa.table({"frames": frames, "genres": [r["genres"] for r in rows]})
    collate = Collate(cfg)
    return [collate(table.slice(i, batch_size)) for i in range(0, len(rows), batch_size)]


def epoch_time(name: str, rows: list[dict], epochs: int = 2, batch_size: int = 64) -> dict[str, Any]:
    """Seconds per training epoch (forward, backward, Adam) of one model, batches prebuilt."""
    torch.manual_seed(0)
    cfg = ModelConfig(name=name)
    model = build_model(cfg, rows[0]["frames"].shape[1])
    batches = _batches(rows, cfg, batch_size)
    opt = make_optimizer(model, TrainConfig())
    train_one_epoch(model, batches[:1], opt, torch.device("cpu"))          # warm-up
    t = time.perf_counter()
    for _ in range(epochs):
        train_one_epoch(model, batches, opt, torch.device("cpu"))
    return {"model": name, "s_per_epoch": (time.perf_counter() - t) / epochs, "num_params": num_params(model),
            "trailers": len(rows)}


def write_synthetic_store(path: Path, rows: list[dict]) -> None:
    """A feature store of random keyframe features (no video): enough for train.py."""
    from featurize import store
    dim = rows[0]["frames"].shape[1]
    full = []
    for r in rows:
        full.append(r | {"frame_times": np.arange(len(r["frames"]), dtype=np.float32),
                         "shot_starts": np.arange(len(r["frames"]), dtype=np.int32),
                         "num_keyframes": len(r["frames"]), "duration_s": float(len(r["frames"])),
                         "n_frames": len(r["frames"]), "fps": 1.0, "width": 0, "height": 0, "video_codec": "",
                         "spectrograms": np.zeros((0, store.SPEC_SIZE), np.float16), "num_windows": 0,
                         "has_audio": False, "audio_padded": False, "sample_rate": 0, "audio_codec": "",
                         "vllf": np.zeros(5, np.float32), "av": np.zeros(5, np.float32), "source_path": ""})
    store.claim(str(path), {"feature_dim": dim, "synthetic": True})
    for i in range(0, len(full), 64):
        store.write_atomic(store.features_table(full[i:i + 64], dim), str(path))


def ray_train_epoch_time(store_path: str, workers: int, epochs: int, storage: str) -> dict[str, Any]:
    """Seconds per epoch of `run_training` (Ray Train, DDP) with this many workers: from the
    timestamps of the per-epoch metrics, so worker start-up is not counted."""
    import mlflow

    from ctt import tracking
    from ctt.config import load_config
    from ctt.distributed import run_training
    cfg = load_config(None, [f"resources.num_workers={workers}", f"train.max_epochs={epochs}",
                             f"train.patience={epochs}", f"train.checkpoint_every={epochs}",
                             f"tracking.storage_path={storage}", "tracking.experiment=benchmark"])
    s = run_training(store_path, cfg)
    hist = mlflow.MlflowClient(tracking.tracking_uri()).get_metric_history(s["run_id"], "train_loss")
    stamps = sorted(m.timestamp for m in hist)
    per_epoch = (stamps[-1] - stamps[0]) / 1000 / max(1, len(stamps) - 1)
    return {"workers": workers, "epochs": s["epochs_trained"], "fit_s": s["fit_s"], "s_per_epoch": per_epoch}
