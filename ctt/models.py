"""CTT-MMC models, built by SPEC name."""
from __future__ import annotations

import torch
from torch import nn

from ctt.config import ModelConfig
from ctt.genres import NUM_GENRES
from ctt.heads import make_head
from ctt.layers import CTT

HEAD_OF_MODEL = {"ctt-a": "linear", "ctt-b": "fc", "ctt-c": "maxout"}


class VisualCTT(nn.Module):
    """Keyframe features V (t x m) -> CTT -> head -> genre logits (sigmoid at use)."""

    def __init__(self, m: int = 2048, n: int = 256, f: int = 3, head: str = "maxout",
                 hidden: int = 256, dropout: float = 0.5, num_classes: int = NUM_GENRES):
        super().__init__()
        self.ctt = CTT(m, n, f)
        self.head = make_head(head, n, num_classes, hidden, dropout)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.ctt(x, lengths)                          # (B, t, m) -> (B, n)

    def forward_head(self, v: torch.Tensor) -> torch.Tensor:
        return self.head(v)                                  # (B, n) -> (B, C)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


def build_model(cfg: ModelConfig, feature_dim: int, num_classes: int = NUM_GENRES) -> nn.Module:
    if cfg.name not in HEAD_OF_MODEL:
        raise ValueError(f"unknown model {cfg.name!r}: expected one of {sorted(HEAD_OF_MODEL)}")
    return VisualCTT(m=feature_dim, n=cfg.n, f=cfg.f, head=HEAD_OF_MODEL[cfg.name],
                     hidden=cfg.hidden, dropout=cfg.dropout, num_classes=num_classes)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
