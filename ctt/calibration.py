"""Probability calibration fitted on validation (beyond the paper; off by default):
per genre, p' = sigmoid(a * logit(p) + b). `temperature` fits a = 1 / T alone (b = 0:
each genre's ranking, hence its AU(PRC), is unchanged); `platt` fits a and b (logistic
regression on the logit). Both maximise the validation likelihood with a weak Gaussian
prior at the identity (log a = 0, b = 0; weight 1 / n), so a split the model separates
perfectly, common with a few dozen validation trailers, gives a finite fit instead of
a step. A genre whose validation split lacks positives or negatives keeps p. Measures
that compare genres with each other (micro AU(PRC), ranking loss) can move either way."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from featurize.genres import GENRES

METHODS = ("none", "temperature", "platt")
EPS = 1e-12           # probabilities this close to 0 or 1 are clipped before the logit


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of logits z against labels y, computed stably."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit(y_val: np.ndarray, p_val: np.ndarray, method: str) -> dict[str, list[float]]:
    """genre -> [a, b] for `method` (identity [1, 0] where there is nothing to fit)."""
    if method not in METHODS:
        raise ValueError(f"calibration {method!r}: expected one of {', '.join(METHODS)}")
    out = {}
    for c, g in enumerate(GENRES):
        y = (np.asarray(y_val)[:, c] > 0.5).astype(np.float64)
        z = logit(p_val[:, c])
        ok = np.isfinite(z)
        y, z = y[ok], z[ok]
        if method == "none" or y.min(initial=1) == y.max(initial=0):
            out[g] = [1.0, 0.0]
            continue
        n = len(y)

        def loss(theta: np.ndarray) -> float:
            log_a, b = theta[0], theta[1] if method == "platt" else 0.0
            return _nll(np.exp(log_a) * z + b, y) + (log_a ** 2 + b ** 2) / n

        r = minimize(loss, np.zeros(2 if method == "platt" else 1), method="L-BFGS-B",
                     bounds=[(-5.0, 5.0)] * (2 if method == "platt" else 1))
        out[g] = [float(np.exp(r.x[0])), float(r.x[1]) if method == "platt" else 0.0]
    return out


def apply(probs: np.ndarray, params: dict[str, list[float]] | None) -> np.ndarray:
    """Calibrated probabilities (NaN rows, trailers a model cannot read, stay NaN)."""
    if not params:
        return probs
    a = np.array([params.get(g, [1.0, 0.0])[0] for g in GENRES])
    b = np.array([params.get(g, [1.0, 0.0])[1] for g in GENRES])
    with np.errstate(invalid="ignore"):
        return 1.0 / (1.0 + np.exp(-(a * logit(probs) + b)))
