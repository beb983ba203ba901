"""The linear probe (beyond the paper): per genre, an L2 logistic regression on standardised
pooled columns of the store, the regularisation chosen by stratified k-fold
cross-validation on train (average precision). It is the reference any model on the same
frozen features should beat.

Pooled inputs, one vector per trailer:
    frames        mean and max of the keyframe features over time        (2 x d)
    spectrograms  mean and std of log1p |STFT| per frequency bin, over every
                  time step of every window                              (2 x 513)
    both          the two side by side (a trailer without audio gets the train mean
                  of the audio part, 0 after standardisation)
    av, vllf      the store's low-level descriptor vector as it is: the probe beside
                  the paper's SVM on the same vectors
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from ctt.data import flat_sequences, sort_by_id, vectors
from featurize import store
from featurize.audio import BINS
from featurize.genres import multi_hot

VECTORS = ("av", "vllf")          # store columns that already hold one vector per trailer
CS = (0.001, 0.01, 0.1, 1.0, 10.0)
FOLDS = 5


def pool_frames(table: pa.Table) -> np.ndarray:
    flat, lengths = flat_sequences(table.column("frames"))
    out = np.zeros((len(lengths), 2 * flat.shape[1]), np.float64)
    start = 0
    for i, n in enumerate(lengths):
        if n:
            x = flat[start:start + n].astype(np.float64)
            out[i] = np.concatenate([x.mean(0), x.max(0)])
        start += n
    return out


def pool_spectrograms(table: pa.Table) -> np.ndarray:
    """NaN rows for trailers without audio windows."""
    flat, lengths = flat_sequences(table.column("spectrograms"))
    out = np.full((len(lengths), 2 * BINS), np.nan)
    start = 0
    for i, n in enumerate(lengths):
        if n:
            x = np.log1p(flat[start:start + n].astype(np.float32).reshape(-1, BINS))
            out[i] = np.concatenate([x.mean(0), x.std(0)])
        start += n
    return out


def load(store_path: str, split: str, what: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, pooled X, labels) of a split, read in batches; `spectrograms` keeps only the
    trailers with audio (as the audio model does)."""
    column = {"spectrograms": ["spectrograms"], "both": ["frames", "spectrograms"]}.get(what, [what])
    filt = store.split_filter(split, "spectrograms" if what == "spectrograms" else "frames")
    ids, xs, ys = [], [], []
    for t in store.iter_batches(store_path, ["trailer_id", "genres", *column], filt, 64):
        t = sort_by_id(t)
        parts = []
        if "frames" in column:
            parts.append(pool_frames(t))
        if "spectrograms" in column:
            parts.append(pool_spectrograms(t))
        if what in VECTORS:
            parts.append(vectors(t, what))
        ids += t.column("trailer_id").to_pylist()
        xs.append(np.concatenate(parts, axis=1))
        ys.append(multi_hot(t.column("genres").to_pylist()))
    if not ids:
        return [], np.zeros((0, 0)), np.zeros((0, 0))
    order = np.argsort(ids, kind="stable")
    return [ids[i] for i in order], np.concatenate(xs)[order], np.concatenate(ys)[order]


def choose_c(X: np.ndarray, y: np.ndarray, seed: int, folds: int = FOLDS) -> tuple[float, float]:
    """(C, mean cross-validated average precision) for one genre; (1.0, nan) when a class
    has fewer than 2 train trailers."""
    k = int(min(folds, y.sum(), len(y) - y.sum()))
    if k < 2:
        return 1.0, float("nan")
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = [float(np.mean(cross_val_score(LogisticRegression(C=c, max_iter=2000), X, y, cv=cv,
                                            scoring="average_precision"))) for c in CS]
    best = int(np.argmax(scores))
    return CS[best], scores[best]


def fit_predict(Xtr: np.ndarray, Ytr: np.ndarray, others: list[np.ndarray], seed: int) -> tuple[list[np.ndarray], list]:
    """Per genre: standardise on train (NaN columns -> the train mean), choose C by CV, fit on
    train, give probabilities for each of `others`. -> (probabilities per other, [(C, cv AP)])."""
    mean = np.nanmean(Xtr, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    fill = lambda X: np.where(np.isfinite(X), X, mean)   # noqa: E731
    scaler = StandardScaler().fit(fill(Xtr))
    Xs, Os = scaler.transform(fill(Xtr)), [scaler.transform(fill(X)) for X in others]
    probs = [np.zeros((len(X), Ytr.shape[1])) for X in others]
    chosen = []
    for c in range(Ytr.shape[1]):
        y = (Ytr[:, c] > 0.5).astype(int)
        C, score = choose_c(Xs, y, seed)
        chosen.append((C, score))
        if y.min() == y.max():                      # one class only: its train share
            for p in probs:
                p[:, c] = y.mean()
            continue
        model = LogisticRegression(C=C, max_iter=2000).fit(Xs, y)
        for p, X in zip(probs, Os):
            p[:, c] = model.predict_proba(X)[:, 1]
    return probs, chosen
