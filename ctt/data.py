"""From feature-store rows to training batches, and what a run knows about its store.

The store keeps `frames` and `spectrograms` as list<fixed_size_list<...>>: the flat
values of a batch are one contiguous buffer, so padding or drawing is one gather, no
per-row Python. `describe_store` reads what a training run needs to know about its store
once; `ShardCache` is one rank's part of the train split, kept in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ctt.config import ModelConfig, input_column
from featurize import store
from featurize.audio import BINS, FRAMES, SPEC_SIZE
from featurize.genres import multi_hot

SPLITS = ("train", "val", "test")

# Seeds, all derived from train.seed; each stream has its own offset so none replays another.
EVAL_DRAW_OFFSET = 12345      # spectrogram draws of test evaluation and predict: one fixed stream per model
RESTART_STRIDE = 1000         # dropout seeds of groups restarted at different epochs never meet (ranks < 1000)
RANK_STRIDE = 7919            # a prime: ranks' draw streams never meet in runs under 7919 epochs


def dropout_seed(seed: int, rank: int, start_epoch: int) -> int:
    """Dropout (and any torch randomness) of a rank whose worker group starts at `start_epoch`:
    a group restarted from a checkpoint does not replay the dropout of the epochs before."""
    return seed + RESTART_STRIDE * start_epoch + rank


def draw_seed(seed: int, rank: int, start_epoch: int) -> int:
    """Batch order and spectrogram draws of a rank whose worker group starts at `start_epoch`."""
    return seed + RANK_STRIDE * rank + start_epoch


class FeatureStoreError(ValueError):
    """The store cannot be trained on (missing, or without the needed splits)."""


@dataclass
class StoreInfo:
    """What a training run needs to know about its store, read once and passed down."""
    path: str
    settings: dict                  # `_featurizer.json`
    feature_dim: int
    column: str                     # the column the model reads
    sizes: dict[str, int]           # trailers per split that the model can read
    train_ids: list[str]            # sorted


def describe_store(store_path: str, model_name: str) -> StoreInfo:
    try:
        settings = store.require_settings(store_path)
    except store.NotAStore as e:
        raise FeatureStoreError(str(e)) from None
    column = input_column(model_name)
    t = store.read_table(store_path, columns=["trailer_id", "split"], filter=store.readable(column))
    splits = t.column("split").to_numpy(zero_copy_only=False)
    sizes = {s: int((splits == s).sum()) for s in SPLITS}
    what = "trailers with audio" if column == "spectrograms" else "trailers"
    for split in SPLITS:
        if not sizes[split]:
            raise FeatureStoreError(f"{store_path} has no '{split}' {what} for {model_name} (sizes: {sizes}); "
                                    "the manifest needs a split column")
    train_ids = sorted(np.asarray(t.column("trailer_id").to_pylist(), dtype=object)[splits == "train"].tolist())
    return StoreInfo(store_path, settings, int(settings["settings"]["feature_dim"]), column, sizes, train_ids)


def columns_of(model_name: str) -> list[str]:
    return ["trailer_id", "genres", input_column(model_name)]


def sort_by_id(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, sort_keys=[("trailer_id", "ascending")]))


def flat_sequences(column: pa.ChunkedArray | pa.Array, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A list<fixed_size_list<d>> column -> ((sum of lengths, d) values, lengths).

    With `finite`, a NaN or inf (only a store written by another tool can hold one) reads
    as 0, so no model input is ever non-finite."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = col.offsets.to_numpy()
    values = col.values.slice(offsets[0], offsets[-1] - offsets[0])   # the rows' items only
    dim = values.type.list_size
    flat = values.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    if finite and not np.isfinite(flat).all():
        flat = np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
    return flat, np.diff(offsets)


def vectors(table: pa.Table, column: str) -> np.ndarray:
    """A column of one vector per trailer (`av`, `vllf`) -> (N, d) float64; a NaN or inf (only
    a store written by another tool can hold one) reads as 0."""
    if not table.num_rows:
        return np.zeros((0, 0))
    x = np.array(table.column(column).to_pylist(), np.float64).reshape(table.num_rows, -1)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def mean_spectrogram(store_path: str, split: str = "train", log: bool = False) -> np.ndarray:
    """The split's mean spectrogram (130 x 513) over every window, read in batches (paper 3.3);
    with `log`, the mean of log1p magnitudes (`model.spectrogram=log`). A window with a
    non-finite value is left out of the mean."""
    total, count = np.zeros(SPEC_SIZE, np.float64), 0
    for t in store.iter_batches(store_path, ["spectrograms"], store.split_filter(split, "spectrograms"), 16):
        flat, _ = flat_sequences(t.column("spectrograms"), finite=False)
        keep = np.isfinite(flat).all(1)
        flat = flat if keep.all() else flat[keep]
        x = flat.astype(np.float64)
        total += (np.log1p(x) if log else x).sum(0)
        count += len(flat)
    return (total / max(count, 1)).astype(np.float32).reshape(FRAMES, BINS)


def frame_stats(store_path: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of every keyframe feature of the split (`model.standardize`),
    read in batches. A dimension constant on train (std at most 1e-6 of the largest) gets std 1:
    it is only centred, so it cannot blow up an unseen trailer's features."""
    total = total_sq = None
    count = 0
    for t in store.iter_batches(store_path, ["frames"], store.split_filter(split, "frames"), 64):
        flat, _ = flat_sequences(t.column("frames"))
        x = flat.astype(np.float64)
        if total is None:
            total, total_sq = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += len(x)
    if not count:
        raise FeatureStoreError(f"{store_path} has no {split} keyframes to standardize with")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std = np.where(std > 1e-6 * std.max(), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def input_stats(store_path: str, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """The train-set statistics a model normalises its input with, by buffer name
    (`ctt.models.set_input_stats`); empty for a model that reads its input raw."""
    if input_column(cfg.name) == "spectrograms":
        return {"mean_spectrogram": mean_spectrogram(store_path, log=cfg.spectrogram == "log")}
    if cfg.standardize:
        mean, std = frame_stats(store_path)
        return {"input_norm.mean": mean, "input_norm.std": std}
    return {}


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
    flat, lengths = flat_sequences(table.column("frames"))
    if max_len:
        flat, lengths = cut_sequences(flat, lengths, max_len)
    x, lens = pad_sequences(flat, lengths, min_len)
    return {"x": x, "lengths": lens, "y": labels(table)}


def part_draws(lengths: np.ndarray, parts: int, rng: np.random.Generator | None,
               uniform: np.ndarray | None = None) -> np.ndarray:
    """(B,) sequence lengths -> (B, parts) indices: one uniform draw inside each of `parts`
    equal parts of every sequence. A sequence shorter than `parts` still gets `parts`
    draws, and every one of its items can be drawn.

        windows 0 .. l-1   |--part 0--|--part 1--| ... |--part p-1--|
        draws               one each, uniform inside its part, in order

    `uniform` ((parts,) values in [0, 1)) instead of `rng`: the same relative place in every
    trailer, so a trailer's draws do not depend on the other rows of its batch (scoring).
    """
    lengths = np.asarray(lengths, np.int64)
    if (lengths < 1).any():
        raise ValueError("every sequence needs at least one item (trailers without audio are left out)")
    j = np.arange(parts)[None, :]
    lo = (j * lengths[:, None]) // parts
    hi = np.maximum(((j + 1) * lengths[:, None]) // parts, lo + 1)
    u = rng.random(lo.shape) if uniform is None else np.broadcast_to(uniform, lo.shape)
    return lo + (u * (hi - lo)).astype(np.int64)


def collate_spectrograms(table: pa.Table, parts: int, rng: np.random.Generator | None,
                         uniform: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Store rows (all with audio) -> {'x': (B, p, 130, 513) float16, 'lengths': (B,) windows, 'y'}."""
    flat, lengths = flat_sequences(table.column("spectrograms"))
    idx = part_draws(lengths, parts, rng, uniform) + (np.cumsum(lengths) - lengths)[:, None]
    x = torch.from_numpy(np.ascontiguousarray(flat[idx.ravel()]))      # float16: half the memory
    return {"x": x.view(len(lengths), parts, FRAMES, BINS),
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


class ShardCache:
    """One rank's fixed part of the train split, read once, reshuffled locally every epoch.

    The part is the rank-strided slice of the sorted train ids, so the same rows land on
    the same rank in every run and a seeded run repeats exactly. Every rank takes
    `rows_per_rank` rows an epoch (len(train ids) // world): DDP needs equal step counts.
    """

    def __init__(self, train_ids: list[str], rank: int, world: int, batch_size: int, rng: np.random.Generator):
        self.mine = pa.array(train_ids[rank::world])
        self.rows_per_rank = len(train_ids) // world
        self.batch_size, self.rng = batch_size, rng
        self.table: pa.Table | None = None

    def fill(self, tables: Iterable[pa.Table]) -> None:
        parts = [t.filter(pc.is_in(t["trailer_id"], value_set=self.mine)) for t in tables]
        self.table = sort_by_id(pa.concat_tables(parts))

    def batches(self, collate: Collate) -> Iterator[dict[str, torch.Tensor]]:
        order = self.rng.permutation(self.table.num_rows)[:self.rows_per_rank]
        return (collate(self.table.take(order[i:i + self.batch_size]))
                for i in range(0, len(order), self.batch_size))
