"""The training loop of the paper, with no Ray in it.

Adam (lr 1e-3, weight decay 1e-4), binary cross-entropy summed over genres
(Eq. 1) and averaged over the batch, early stopping on validation micro AU(PRC).
The same `fit` runs in a Ray Train worker (under DDP) or in a plain process:
batches are dicts of tensors from any iterable.
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from ctt import metrics
from ctt.config import TrainConfig

Batches = Callable[[], Iterable[dict[str, torch.Tensor]]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def bce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Eq. 1: summed over the C genres, then the batch mean.
    return nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum") / len(y)


@dataclass
class FitState:
    """Everything a restarted worker needs to go on where the last one stopped."""
    epoch: int = -1                      # last finished epoch
    best_metric: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    lr_scale: float = 1.0                # what the plateau schedule has multiplied train.lr by so far

    def ended_by(self, cfg: TrainConfig) -> str:
        """early_stopping (patience ran out) or max_epochs (the cap came first)."""
        return "early_stopping" if self.bad_epochs >= cfg.patience else "max_epochs"


def learning_rate(cfg: TrainConfig, state: FitState, epoch: int) -> float:
    """The learning rate of `epoch`, a pure function of the config and the fit state, so a
    run restored from a checkpoint continues the same schedule. none: train.lr (the paper);
    cosine: from train.lr down to train.lr * train.lr_min over max_epochs; plateau: train.lr
    times `lr_scale`, which halves (train.lr_factor) after every train.lr_patience epochs
    without a better val AU(PRC)."""
    if cfg.lr_schedule == "cosine":
        low = cfg.lr * cfg.lr_min
        return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * epoch / max(1, cfg.max_epochs - 1)))
    if cfg.lr_schedule == "plateau":
        return cfg.lr * state.lr_scale
    return cfg.lr


def train_one_epoch(model: nn.Module, batches: Iterable[dict], optimizer: torch.optim.Optimizer,
                    device: torch.device) -> float:
    model.train()
    total, count = 0.0, 0
    for b in batches:
        x, lengths, y = b["x"].to(device), b["lengths"].to(device), b["y"].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = bce_loss(model(x, lengths), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / max(count, 1)


@torch.no_grad()
def probabilities(model: nn.Module, batches: Iterable[dict], device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """-> (probabilities (N, C), labels (N, C)) in batch order."""
    model.eval()
    probs, ys = [], []
    for b in batches:
        logits = model(b["x"].to(device), b["lengths"].to(device))
        probs.append(torch.sigmoid(logits.float()).cpu().numpy())
        ys.append(b["y"].numpy())
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(probs), np.concatenate(ys)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def fit(model: nn.Module, train_batches: Batches, val_batches: Batches, cfg: TrainConfig,
        optimizer: torch.optim.Optimizer | None = None, state: FitState | None = None,
        device: torch.device | None = None,
        on_epoch_end: Callable[[FitState, dict[str, float]], None] | None = None) -> FitState:
    """Train until `max_epochs` or `patience` epochs without a better val micro AU(PRC).

    `state` resumes an interrupted run (epoch counter, best weights, patience).
    `on_epoch_end(state, metrics)` runs after every epoch: where Ray Train reports
    and checkpoints.
    """
    device = device or torch.device("cpu")
    optimizer = optimizer or make_optimizer(model, cfg)
    state = state or FitState()
    while state.epoch + 1 < cfg.max_epochs and state.bad_epochs < cfg.patience:
        epoch = state.epoch + 1
        lr = learning_rate(cfg, state, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_loss = train_one_epoch(model, train_batches(), optimizer, device)
        probs, y = probabilities(model, val_batches(), device)
        val_micro = metrics.auprc(y, probs, "micro") if len(y) else float("nan")
        val_macro = metrics.auprc(y, probs, "macro") if len(y) else float("nan")
        val_loss = float(bce_loss(torch.logit(torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7)),
                                  torch.from_numpy(y))) if len(y) else float("nan")
        improved = val_micro > state.best_metric
        if improved:
            state.best_metric, state.best_epoch, state.bad_epochs = val_micro, epoch, 0
            state.best_state = copy.deepcopy(unwrap(model).state_dict())
        else:
            state.bad_epochs += 1
            if cfg.lr_schedule == "plateau" and state.bad_epochs % cfg.lr_patience == 0:
                state.lr_scale *= cfg.lr_factor
        state.epoch = epoch
        m = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
             "val_auprc_micro": val_micro, "val_auprc_macro": val_macro,
             "best_val_auprc_micro": state.best_metric, "lr": lr}
        state.history.append(m)
        if on_epoch_end:
            on_epoch_end(state, m)
    return state
