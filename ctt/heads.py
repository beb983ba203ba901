"""Classification heads over the CTT representation (CTT-MMC-A, -B, -C)."""
from __future__ import annotations

from torch import nn

from ctt.config import HEADS
from ctt.layers import Maxout


def _linear(in_features: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))


def _fc(in_features: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(),
                         nn.Dropout(dropout), nn.Linear(hidden, num_classes))


def _maxout(in_features: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), Maxout(in_features, hidden),
                         nn.Dropout(dropout), nn.Linear(hidden, num_classes))


_BUILDERS = dict(zip(HEADS, (_linear, _fc, _maxout)))          # in HEADS order: CTT-MMC-A, -B, -C


def make_head(kind: str, in_features: int, num_classes: int,
              hidden: int = 256, dropout: float = 0.5) -> nn.Module:
    """Logits head. `kind`: linear (A), fc (B: two FC layers), maxout (C).

    Dropout sits on the CTT representation and on the hidden layer, as the paper
    applies dropout 0.5 to its FC layers.
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown head {kind!r}: expected {', '.join(HEADS)}")
    return _BUILDERS[kind](in_features, num_classes, hidden, dropout)
