"""Scoring store rows with a trained model: the one path for a run's val/test evaluation
and for predict, so a model scores a trailer the same way in both.

Audio models average `model.test_draws` draws of p spectrograms (paper: 10). Draw k takes
the same relative place inside each part of every trailer, fixed per model seed
(`EVAL_DRAW_OFFSET`), so a trailer scores the same alone, in any batch, in a run's test
evaluation, in predict and in the served model. Keyframe models need one pass.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from ctt.config import AUDIO_MODELS, ModelConfig, input_column
from ctt.data import EVAL_DRAW_OFFSET, Collate, collate_spectrograms, columns_of, labels, part_draws
from ctt.evidence import input_attributions
from ctt.training import probabilities
from featurize import store
from featurize.genres import NUM_GENRES


class Scorer:
    """Probabilities (N, C) for batches of store rows the model can read."""

    def __init__(self, model: torch.nn.Module, cfg: ModelConfig, seed: int):
        self.model, self.cfg = model.eval(), cfg
        self.audio = cfg.name in AUDIO_MODELS
        self.collate = Collate(cfg)
        self.uniforms = np.random.default_rng(seed + EVAL_DRAW_OFFSET).random((cfg.test_draws, cfg.parts))

    def batches(self, table: pa.Table) -> list[dict[str, torch.Tensor]]:
        if self.audio:
            return [collate_spectrograms(table, self.cfg.parts, None, u) for u in self.uniforms]
        return [self.collate(table)]

    def __call__(self, table: pa.Table) -> np.ndarray:
        return np.mean([probabilities(self.model, [b], torch.device("cpu"))[0] for b in self.batches(table)], axis=0)

    def attributions(self, table: pa.Table) -> list[np.ndarray]:
        """Rows the model can read -> per trailer (steps, C) attributions (`ctt.evidence`):
        steps are its keyframes, or for an audio model its spectrogram windows (each drawn
        window's attribution averaged over the draws; windows never drawn get 0)."""
        if not self.audio:
            b = self.collate(table)
            a = input_attributions(self.model, b)
            return [a[i, :int(n)] for i, n in enumerate(b["lengths"])]
        flat_lengths = np.diff(table.column("spectrograms").combine_chunks().offsets.to_numpy())
        out = [np.zeros((int(n), NUM_GENRES)) for n in flat_lengths]
        for u in self.uniforms:
            b = collate_spectrograms(table, self.cfg.parts, None, u)
            a = input_attributions(self.model, b)                         # (B, p, C)
            idx = part_draws(flat_lengths, self.cfg.parts, None, u)      # (B, p) window of each part
            for i in range(len(out)):
                np.add.at(out[i], idx[i], a[i] / len(self.uniforms))
        return out

    def where_readable(self, table: pa.Table) -> np.ndarray:
        """Any store rows -> probs (N, C), NaN rows where the model cannot read a trailer (an
        audio model and a trailer without sound)."""
        ids = table.column("trailer_id").to_pylist()
        sub = table.filter(store.readable(input_column(self.cfg.name))).select(columns_of(self.cfg.name))
        ok = np.isin(np.asarray(ids, dtype=object), np.asarray(sub.column("trailer_id").to_pylist(), dtype=object))
        probs = np.full((len(ids), NUM_GENRES), np.nan)
        if sub.num_rows:
            probs[ok] = self(sub)
        return probs


def score_split(scorer: Scorer, store_path: str, split: str,
                batch_size: int = 32) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, probabilities, labels) of every readable trailer of a split, in id order,
    streamed from the store."""
    name = scorer.cfg.name
    ids, probs, ys = [], [], []
    for t in store.iter_batches(store_path, columns_of(name), store.split_filter(split, input_column(name)),
                                batch_size):
        probs.append(scorer(t))
        ids += t.column("trailer_id").to_pylist()
        ys.append(labels(t).numpy())
    if not ids:
        return [], np.zeros((0, NUM_GENRES)), np.zeros((0, NUM_GENRES))
    order = np.argsort(ids, kind="stable")
    return [ids[i] for i in order], np.concatenate(probs)[order], np.concatenate(ys)[order]
