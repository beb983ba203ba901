"""Classification heads over the CTT representation (CTT-MMC-A, -B, -C)."""
from __future__ import annotations

from torch import nn

from ctt.layers import Maxout


def make_head(kind: str, in_features: int, num_classes: int,
              hidden: int = 256, dropout: float = 0.5) -> nn.Module:
    """Logits head. `kind`: linear (A), fc (B: two FC layers), maxout (C).

    Dropout sits on the CTT representation and on the hidden layer, as the paper
    applies dropout 0.5 to its FC layers.
    """
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    if kind == "fc":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(),
                             nn.Dropout(dropout), nn.Linear(hidden, num_classes))
    if kind == "maxout":
        return nn.Sequential(nn.Dropout(dropout), Maxout(in_features, hidden),
                             nn.Dropout(dropout), nn.Linear(hidden, num_classes))
    raise ValueError(f"unknown head {kind!r}: expected linear, fc or maxout")
