"""Batches of padded keyframe sequences from feature-store rows (pyarrow tables).

The store keeps `frames` as list<fixed_size_list<float32, m>>: the flat values of a
batch are one contiguous buffer, so padding is one scatter, no per-row Python.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from ctt.genres import multi_hot


def _flat_sequences(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = col.offsets.to_numpy()
    values = col.values.slice(offsets[0], offsets[-1] - offsets[0])   # the rows' keyframes only
    dim = values.type.list_size
    flat = values.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    return flat, np.diff(offsets)


def pad_sequences(flat: np.ndarray, lengths: np.ndarray, min_len: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum(l), m) + lengths -> (B, T, m) zero-padded with T = max(max(l), min_len)."""
    B = len(lengths)
    T = max(int(lengths.max()) if B else 0, min_len, 1)
    x = torch.zeros(B, T, flat.shape[1], dtype=torch.float32)
    lens = torch.as_tensor(lengths, dtype=torch.long)
    mask = torch.arange(T)[None, :] < lens[:, None]
    x[mask] = torch.from_numpy(np.array(flat, dtype=np.float32))   # batches may be read-only views
    return x, lens


def collate_frames(table: pa.Table, min_len: int = 1) -> dict[str, torch.Tensor]:
    """Store rows -> {'x': (B, T, m), 'lengths': (B,), 'y': (B, C)}."""
    flat, lengths = _flat_sequences(table.column("frames"))
    x, lens = pad_sequences(flat, lengths, min_len)
    y = torch.from_numpy(multi_hot(table.column("genres").to_pylist()))
    return {"x": x, "lengths": lens, "y": y}
