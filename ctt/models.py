"""The paper's models, built by SPEC name.

    ctt-a|b|c  keyframes V (t x m) -> CTT -> head (A linear, B two FC, C Maxout)   (section 3.2)
    ctt-s      p spectrograms (130 x 513) -> BatchNorm -> shared CTT -> mean over p -> head   (3.3)
    lstm       keyframes cut/padded to 120 steps -> LSTM(256) -> dropout -> classes   (4.2)

Every model maps `(x, lengths)` to genre logits (sigmoid at use), so one training
loop serves them all.
"""
from __future__ import annotations

import torch
from torch import nn

from ctt.config import ModelConfig
from ctt.genres import NUM_GENRES
from ctt.heads import make_head
from ctt.layers import CTT

HEAD_OF_MODEL = {"ctt-a": "linear", "ctt-b": "fc", "ctt-c": "maxout", "ctt-s": "linear"}
SPEC_FRAMES, SPEC_BINS = 130, 513             # one 3-s window at 44.1 kHz: time x frequency
AUDIO_MODELS = ("ctt-s",)


def input_column(model_name: str) -> str:
    """The feature-store column a model reads."""
    return "spectrograms" if model_name in AUDIO_MODELS else "frames"


class VisualCTT(nn.Module):
    """Keyframe features V (t x m) -> CTT -> head -> genre logits."""

    def __init__(self, m: int = 2048, n: int = 256, f: int = 3, head: str = "maxout",
                 hidden: int = 256, dropout: float = 0.5, num_classes: int = NUM_GENRES):
        super().__init__()
        self.ctt = CTT(m, n, f)
        self.head = make_head(head, n, num_classes, hidden, dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.ctt(x, lengths))              # (B, t, m) -> (B, n) -> (B, C)


class AudioCTT(nn.Module):
    """CTT-MMC-S: x (B, p, 130, 513) spectrograms, one drawn per part of the trailer's audio.

    The train-set mean spectrogram is a buffer, so it travels with the weights and
    prediction normalises exactly as training did. Batch norm runs per frequency bin.
    """

    def __init__(self, n: int = 256, f: int = 3, head: str = "linear", hidden: int = 256,
                 dropout: float = 0.5, num_classes: int = NUM_GENRES,
                 frames: int = SPEC_FRAMES, bins: int = SPEC_BINS):
        super().__init__()
        self.register_buffer("mean_spectrogram", torch.zeros(frames, bins))
        self.norm = nn.BatchNorm1d(bins)
        self.ctt = CTT(bins, n, f)
        self.head = make_head(head, n, num_classes, hidden, dropout)

    def set_mean(self, mean: torch.Tensor) -> None:
        self.mean_spectrogram.copy_(torch.as_tensor(mean, dtype=torch.float32).reshape(self.mean_spectrogram.shape))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        B, p, T, F = x.shape
        s = x.float().reshape(B * p, T, F) - self.mean_spectrogram
        s = self.norm(s.transpose(1, 2)).transpose(1, 2)    # BatchNorm1d over (N, F, T)
        v = self.ctt(s).view(B, p, -1).mean(dim=1)           # shared CTT, average-pooled over the p parts
        return self.head(v)


class LSTMBaseline(nn.Module):
    """The paper's LSTM baseline: the last valid hidden state (padding masked by packing)."""

    def __init__(self, m: int = 2048, hidden: int = 256, dropout: float = 0.5, num_classes: int = NUM_GENRES):
        super().__init__()
        self.lstm = nn.LSTM(m, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])


def build_model(cfg: ModelConfig, feature_dim: int, num_classes: int = NUM_GENRES) -> nn.Module:
    head = cfg.head or HEAD_OF_MODEL.get(cfg.name, "")
    if cfg.name in ("ctt-a", "ctt-b", "ctt-c"):
        return VisualCTT(m=feature_dim, n=cfg.n, f=cfg.f, head=head, hidden=cfg.hidden,
                         dropout=cfg.dropout, num_classes=num_classes)
    if cfg.name == "ctt-s":
        return AudioCTT(n=cfg.n, f=cfg.f, head=head, hidden=cfg.hidden, dropout=cfg.dropout,
                        num_classes=num_classes)
    if cfg.name == "lstm":
        return LSTMBaseline(m=feature_dim, hidden=cfg.hidden, dropout=cfg.dropout, num_classes=num_classes)
    raise ValueError(f"unknown model {cfg.name!r}: expected ctt-a, ctt-b, ctt-c, ctt-s or lstm")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
