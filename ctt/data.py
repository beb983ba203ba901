"""Batches from feature-store rows (pyarrow tables): padded keyframe sequences, or
spectrograms drawn per part of each trailer's audio.

The store keeps `frames` and `spectrograms` as list<fixed_size_list<...>>: the flat
values of a batch are one contiguous buffer, so padding or drawing is one gather,
no per-row Python.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from ctt.config import ModelConfig
from ctt.genres import multi_hot
from ctt.models import SPEC_BINS, SPEC_FRAMES, input_column


def _flat_sequences(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = col.offsets.to_numpy()
    values = col.values.slice(offsets[0], offsets[-1] - offsets[0])   # the rows' items only
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


def cut_sequences(flat: np.ndarray, lengths: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first `max_len` steps of every sequence (the LSTM's 120-step cut)."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = (np.arange(len(flat)) - starts) < max_len
    return flat[keep], np.minimum(lengths, max_len)


def labels(table: pa.Table) -> torch.Tensor:
    return torch.from_numpy(multi_hot(table.column("genres").to_pylist()))


def collate_frames(table: pa.Table, min_len: int = 1, max_len: int = 0) -> dict[str, torch.Tensor]:
    """Store rows -> {'x': (B, T, m), 'lengths': (B,), 'y': (B, C)}; max_len > 0 cuts sequences."""
    flat, lengths = _flat_sequences(table.column("frames"))
    if max_len:
        flat, lengths = cut_sequences(flat, lengths, max_len)
    x, lens = pad_sequences(flat, lengths, min_len)
    return {"x": x, "lengths": lens, "y": labels(table)}


def part_draws(lengths: np.ndarray, parts: int, rng: np.random.Generator) -> np.ndarray:
    """(B,) sequence lengths -> (B, parts) indices: one uniform draw inside each of `parts`
    equal parts of every sequence. A sequence shorter than `parts` still gets `parts`
    draws, and every one of its items can be drawn."""
    lengths = np.asarray(lengths, np.int64)
    if (lengths < 1).any():
        raise ValueError("every sequence needs at least one item (trailers without audio are left out)")
    j = np.arange(parts)[None, :]
    lo = (j * lengths[:, None]) // parts
    hi = np.maximum(((j + 1) * lengths[:, None]) // parts, lo + 1)
    return lo + (rng.random(lo.shape) * (hi - lo)).astype(np.int64)


def collate_spectrograms(table: pa.Table, parts: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Store rows (all with audio) -> {'x': (B, p, 130, 513) float16, 'lengths': (B,) windows, 'y'}."""
    flat, lengths = _flat_sequences(table.column("spectrograms"))
    idx = part_draws(lengths, parts, rng) + (np.cumsum(lengths) - lengths)[:, None]
    x = torch.from_numpy(np.ascontiguousarray(flat[idx.ravel()]))      # float16: half the memory
    return {"x": x.view(len(lengths), parts, SPEC_FRAMES, SPEC_BINS),
            "lengths": torch.as_tensor(lengths, dtype=torch.long), "y": labels(table)}


class Collate:
    """The batch maker of a model: picklable, so Ray Data can run it beside the loader."""

    def __init__(self, cfg: ModelConfig, seed: int = 0):
        self.cfg, self.column = cfg, input_column(cfg.name)
        self.rng = np.random.default_rng(seed)

    def __call__(self, table: pa.Table) -> dict[str, torch.Tensor]:
        if self.column == "spectrograms":
            return collate_spectrograms(table, self.cfg.parts, self.rng)
        return collate_frames(table, self.cfg.f, self.cfg.max_steps if self.cfg.name == "lstm" else 0)
