"""The paper's models, built by name.

    ctt-a|b|c  keyframes V (t x m) -> CTT -> head (A linear, B two FC, C Maxout)   (section 3.2)
    ctt-s      p spectrograms (130 x 513) -> BatchNorm -> shared CTT -> mean over p -> head   (3.3)
    lstm       keyframes cut/padded to 120 steps -> LSTM(256) -> dropout -> classes   (4.2)

Every model maps `(x, lengths)` to genre logits (sigmoid at use), so one training
loop serves them all; `forward_features` gives the pooled representation and
`forward_head` the logits from it (the timm convention), so heads can be swapped and
features reused.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ctt.config import MODELS, ModelConfig
from ctt.heads import make_head
from ctt.layers import CTT, Standardize
from featurize.audio import BINS, FRAMES
from featurize.genres import NUM_GENRES


class VisualCTT(nn.Module):
    """Keyframe features V (t x m) -> CTT -> head -> genre logits."""

    def __init__(self, m: int = 2048, n: int = 256, f: int = 3, head: str = "maxout",
                 hidden: int = 256, dropout: float = 0.5, num_classes: int = NUM_GENRES,
                 standardize: bool = False):
        super().__init__()
        self.input_norm = Standardize(m) if standardize else None
        self.ctt = CTT(m, n, f)
        self.head = make_head(head, n, num_classes, hidden, dropout)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.input_norm is not None:
            x = self.input_norm(x, lengths)
        return self.ctt(x, lengths)                          # (B, t, m) -> (B, n)

    def forward_head(self, v: torch.Tensor) -> torch.Tensor:
        return self.head(v)                                  # (B, n) -> (B, C)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


class AudioCTT(nn.Module):
    """CTT-MMC-S: x (B, p, 130, 513) spectrograms, one drawn per part of the trailer's audio.

        x --minus mean spectrogram--> BatchNorm per frequency bin --> CTT (shared by the p parts)
          --> (B, p, n) --mean over p--> (B, n) --> head

    The train-set mean spectrogram is a buffer, so it travels with the weights and
    prediction normalises exactly as training did. With `log`, magnitudes are compressed
    by log1p first (the mean is then the mean of log1p magnitudes): an option beyond the
    paper for inputs whose range spans orders of magnitude.
    """

    def __init__(self, n: int = 256, f: int = 3, head: str = "linear", hidden: int = 256,
                 dropout: float = 0.5, num_classes: int = NUM_GENRES,
                 frames: int = FRAMES, bins: int = BINS, log: bool = False):
        super().__init__()
        self.log = log
        self.register_buffer("mean_spectrogram", torch.zeros(frames, bins))
        self.norm = nn.BatchNorm1d(bins)
        self.ctt = CTT(bins, n, f)
        self.head = make_head(head, n, num_classes, hidden, dropout)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        B, p, T, F = x.shape
        s = x.float().reshape(B * p, T, F)
        s = (torch.log1p(s) if self.log else s) - self.mean_spectrogram
        s = self.norm(s.transpose(1, 2)).transpose(1, 2)    # BatchNorm1d over (N, F, T)
        return self.ctt(s).view(B, p, -1).mean(dim=1)        # shared CTT, average-pooled over the p parts

    def forward_head(self, v: torch.Tensor) -> torch.Tensor:
        return self.head(v)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


class LSTMBaseline(nn.Module):
    """The paper's LSTM baseline: the last valid hidden state (padding masked by packing)."""

    def __init__(self, m: int = 2048, hidden: int = 256, dropout: float = 0.5, num_classes: int = NUM_GENRES,
                 standardize: bool = False):
        super().__init__()
        self.input_norm = Standardize(m) if standardize else None
        self.lstm = nn.LSTM(m, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        if self.input_norm is not None:
            x = self.input_norm(x, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]                                         # (B, hidden)

    def forward_head(self, v: torch.Tensor) -> torch.Tensor:
        return self.head(v)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


def _visual(cfg: ModelConfig, head: str, feature_dim: int, num_classes: int) -> nn.Module:
    return VisualCTT(m=feature_dim, n=cfg.n, f=cfg.f, head=head, hidden=cfg.hidden, dropout=cfg.dropout,
                     num_classes=num_classes, standardize=cfg.standardize)


def _audio(cfg: ModelConfig, head: str, feature_dim: int, num_classes: int) -> nn.Module:
    return AudioCTT(n=cfg.n, f=cfg.f, head=head, hidden=cfg.hidden, dropout=cfg.dropout, num_classes=num_classes,
                    log=cfg.spectrogram == "log")


def _lstm(cfg: ModelConfig, head: str, feature_dim: int, num_classes: int) -> nn.Module:
    return LSTMBaseline(m=feature_dim, hidden=cfg.hidden, dropout=cfg.dropout, num_classes=num_classes,
                        standardize=cfg.standardize)


# ModelSpec.arch -> builder; the model names and their heads are `ctt.config.MODELS`.
ARCHITECTURES: dict[str, Callable[[ModelConfig, str, int, int], nn.Module]] = {
    "visual": _visual, "audio": _audio, "lstm": _lstm}


def build_model(cfg: ModelConfig, feature_dim: int, num_classes: int = NUM_GENRES) -> nn.Module:
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}: expected {', '.join(MODELS)}")
    spec = MODELS[cfg.name]
    return ARCHITECTURES[spec.arch](cfg, cfg.head or spec.head, feature_dim, num_classes)


def set_input_stats(model: nn.Module, stats: dict[str, np.ndarray]) -> None:
    """Copy train-set input statistics (`ctt.data.input_stats`: buffer name -> array) into the
    model's normalisation buffers."""
    for name, value in stats.items():
        buf = model.get_buffer(name)
        buf.copy_(torch.tensor(np.asarray(value), dtype=buf.dtype).reshape(buf.shape))   # a copy: stats may be read-only views


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
