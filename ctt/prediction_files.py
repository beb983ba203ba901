"""A run's predictions as a table: the CSV every run logs per split (`predictions/<split>_predictions.csv`)
and every reader (fusion, the report) parses back."""
from __future__ import annotations

import numpy as np
import pandas as pd

from featurize.genres import GENRES, multi_hot, parse_genres


def predictions_frame(trailer_ids: list[str], probs: np.ndarray, y_true: np.ndarray | None = None) -> pd.DataFrame:
    """trailer_id, one probability column per genre, and (when known) the true genres as `a|b`."""
    df = pd.DataFrame(probs, columns=list(GENRES))
    df.insert(0, "trailer_id", trailer_ids)
    if y_true is not None:
        df["true_genres"] = ["|".join(g for g, v in zip(GENRES, row) if v > 0.5) for row in y_true]
    return df


def frame_arrays(df: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A predictions frame -> (trailer ids, labels (N, C), probabilities (N, C))."""
    y = multi_hot(parse_genres(g) for g in df["true_genres"].fillna(""))
    return df["trailer_id"].astype(str).tolist(), y, df[list(GENRES)].to_numpy(np.float64)
