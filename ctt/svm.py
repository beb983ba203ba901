"""The low-level baselines' classifier: one-vs-all SVMs with probability outputs on
standardised features, grid-searched per genre on the validation split (paper 4.2), or,
beyond the paper, by k-fold cross-validation (`baseline.selection=cv`).

Grid points are ranked by AU(PRC), which depends only on the order of the scores: by
default they are scored with `decision_function`, whose order Platt scaling keeps, and only
the chosen point is fitted with `probability=True` (libsvm's five internal fits).

Pure scikit-learn; `ctt.baselines` fans the grid out over a Ray cluster.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ctt.config import BaselineConfig


def param_grid(cfg: BaselineConfig) -> list[dict[str, Any]]:
    """C x kernel, and gamma for the rbf kernel only (a linear kernel has none)."""
    grid = []
    for c in cfg.C:
        for k in cfg.kernels:
            if k == "linear":
                grid.append({"kernel": "linear", "C": float(c)})
            else:
                grid += [{"kernel": k, "C": float(c), "gamma": float(g)} for g in cfg.gamma]
    return grid


class Constant:
    """A genre with one class in train: its train frequency for every trailer."""

    def __init__(self, p: float):
        self.p = p

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile([1 - self.p, self.p], (len(X), 1))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.p)


def fit_genre(X: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int = 0, max_iter: int = -1,
              probability: bool = True):
    """An imputer + scaler + SVC for one genre; with `probability`, Platt scaling inside libsvm."""
    if y.min() == y.max() or y.sum() < 2 or (1 - y).sum() < 2:
        return Constant(float(y.mean()))
    model = make_pipeline(SimpleImputer(), StandardScaler(),
                          SVC(probability=probability, random_state=seed, cache_size=500, max_iter=max_iter, **params))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def genre_probs(model, X: np.ndarray) -> np.ndarray:
    return model.predict_proba(X)[:, 1]


def ranking_scores(X_train: np.ndarray, y_train: np.ndarray, X_eval: np.ndarray, params: dict[str, Any],
                   seed: int, max_iter: int, scores: str) -> np.ndarray:
    """Scores of X_eval that rank like the grid point's probabilities: the decision function
    (one fit), or the probabilities themselves (`scores="probability"`, Platt's five more)."""
    model = fit_genre(X_train, y_train, params, seed, max_iter, probability=scores == "probability")
    return genre_probs(model, X_eval) if scores == "probability" else model.decision_function(X_eval)


def val_scores(X_train: np.ndarray, Y_train: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray,
               params: dict[str, Any], seed: int = 0, max_iter: int = -1, scores: str = "decision") -> np.ndarray:
    """Validation AU(PRC) of one grid point for every genre; NaN where val has no positive."""
    out = np.full(Y_train.shape[1], np.nan)
    for c in range(Y_train.shape[1]):
        if Y_val[:, c].any():
            s = ranking_scores(X_train, Y_train[:, c], X_val, params, seed, max_iter, scores)
            out[c] = average_precision_score(Y_val[:, c], s)
    return out


def cv_scores(X: np.ndarray, Y: np.ndarray, params: dict[str, Any], folds: int = 5, seed: int = 0,
              max_iter: int = -1, scores: str = "decision") -> np.ndarray:
    """Mean AU(PRC) over stratified k-fold splits of (X, Y) of one grid point for every genre:
    a choice that does not hang on a validation split of a few dozen trailers. k is at most
    the genre's count of positives (and of negatives); NaN where that is below 2."""
    out = np.full(Y.shape[1], np.nan)
    for c in range(Y.shape[1]):
        y = (Y[:, c] > 0.5).astype(int)
        k = int(min(folds, y.sum(), len(y) - y.sum()))
        if k < 2:
            continue
        split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y)
        out[c] = float(np.mean([average_precision_score(y[te], ranking_scores(X[tr], y[tr], X[te], params, seed,
                                                                                 max_iter, scores))
                                for tr, te in split]))
    return out


def select(scores: np.ndarray) -> np.ndarray:
    """(grid points, genres) validation scores -> best grid index per genre (first on ties;
    a genre without a validation positive takes grid point 0)."""
    return np.argmax(np.nan_to_num(scores, nan=-1.0), axis=0)


def fit_predict(X_train: np.ndarray, Y_train: np.ndarray, params_per_genre: list[dict[str, Any]],
                X_eval: list[np.ndarray], seed: int = 0, max_iter: int = -1) -> list[np.ndarray]:
    """Fit each genre with its chosen params; probabilities (N, C) for each array in X_eval."""
    outs = [np.zeros((len(X), Y_train.shape[1])) for X in X_eval]
    for c, params in enumerate(params_per_genre):
        model = fit_genre(X_train, Y_train[:, c], params, seed, max_iter)
        for o, X in zip(outs, X_eval):
            o[:, c] = genre_probs(model, X)
    return outs
