"""Seconds per training epoch of the sequence models on synthetic keyframe features: the
paper's claim that CTT trains faster than the LSTM, measured on any device. Pure PyTorch
(no Ray), so the CPU suite and the GPU suite of `jobs/benchmark.py` share it."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ctt.config import ModelConfig, TrainConfig
from ctt.data import Collate
from ctt.models import build_model, num_params
from ctt.training import make_optimizer, train_one_epoch
from featurize import store
from featurize.genres import GENRES

LMTD9_TRAIN = 2861          # LMTD-9's training split
LMTD9_MAX_T = 240           # keyframes of the longest sequences the suite generates


def synthetic_rows(n: int, dim: int, min_t: int, max_t: int, seed: int = 0) -> list[dict[str, Any]]:
    """Keyframe sequences of LMTD-like lengths with random features and labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = int(rng.integers(min_t, max_t + 1))
        k = int(rng.integers(1, 4))
        rows.append({"trailer_id": f"s{i:05d}", "frames": rng.standard_normal((t, dim), dtype=np.float32),
                     "genres": sorted(rng.choice(GENRES, k, replace=False).tolist()),
                     "split": "train" if i % 10 < 7 else ("val" if i % 10 < 8 else "test")})
    return rows


def prebuilt_batches(rows: list[dict], cfg: ModelConfig, batch_size: int,
                     device: torch.device) -> list[dict[str, torch.Tensor]]:
    """The model's own collate over the rows, every batch already on `device`: the epoch
    time is the model's, not the loader's."""
    dim = rows[0]["frames"].shape[1]
    table = pa.table({"frames": store.list_of_vectors([r["frames"] for r in rows], dim, pa.float32()),
                      "genres": [r["genres"] for r in rows]})
    collate = Collate(cfg)
    return [{k: v.to(device) for k, v in collate(table.slice(i, batch_size)).items()}
            for i in range(0, len(rows), batch_size)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_time(name: str, rows: list[dict], epochs: int = 2, batch_size: int = 64,
               device: str | torch.device = "cpu") -> dict[str, Any]:
    """Seconds per training epoch (forward, backward, Adam) of one model, batches prebuilt."""
    device = torch.device(device)
    torch.manual_seed(0)
    cfg = ModelConfig(name=name)
    model = build_model(cfg, rows[0]["frames"].shape[1]).to(device)
    batches = prebuilt_batches(rows, cfg, batch_size, device)
    opt = make_optimizer(model, TrainConfig())
    train_one_epoch(model, batches[:2], opt, device)          # warm-up: kernels, cuDNN plans
    _sync(device)
    t = time.perf_counter()
    for _ in range(epochs):
        train_one_epoch(model, batches, opt, device)
    _sync(device)
    return {"model": name, "s_per_epoch": (time.perf_counter() - t) / epochs, "num_params": num_params(model),
            "trailers": len(rows), "device": str(device)}
