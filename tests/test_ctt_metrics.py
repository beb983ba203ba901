import numpy as np
import pytest
from sklearn.metrics import average_precision_score, label_ranking_loss

from ctt import metrics
from featurize.genres import GENRES, LMTD9_TEST_CARDINALITY_SHARE, LMTD9_TEST_COUNTS, multi_hot, sample_labels


def test_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 9)) < 0.3).astype(int)
    s = rng.random((200, 9))
    m = metrics.evaluate(y, s, prefix="test_")
    for avg in ("micro", "macro", "weighted"):
        assert m[f"test_auprc_{avg}"] == pytest.approx(average_precision_score(y, s, average=avg))
    assert m["test_ranking_loss"] == pytest.approx(label_ranking_loss(y, s))
    for c, g in enumerate(GENRES):
        assert m[f"test_auprc_{g}"] == pytest.approx(average_precision_score(y[:, c], s[:, c]))


def test_random_scores_on_lmtd9_test_distribution():
    """Paper's random baseline: macro 0.206, micro 0.204, ranking loss 0.466 (one draw)."""
    rng = np.random.default_rng(1)
    y = multi_hot(sample_labels(rng, 20000, LMTD9_TEST_COUNTS, LMTD9_TEST_CARDINALITY_SHARE))
    s = rng.random(y.shape)
    assert metrics.auprc(y, s, "micro") == pytest.approx(0.21, abs=0.02)
    assert metrics.auprc(y, s, "macro") == pytest.approx(0.21, abs=0.02)
    assert metrics.ranking_loss(y, s) == pytest.approx(0.5, abs=0.02)


def test_perfect_scores():
    y = np.eye(9)[np.arange(30) % 9]
    m = metrics.evaluate(y, y * 0.9 + 0.05)
    assert m["auprc_micro"] == pytest.approx(1.0) and m["ranking_loss"] == pytest.approx(0.0)


def test_genre_without_positives_is_nan_and_left_out_of_macro():
    y = np.zeros((10, 9))
    y[:5, 0] = 1
    y[5:, 1] = 1
    s = np.random.default_rng(0).random((10, 9))
    per = metrics.per_genre_auprc(y, s)
    assert np.isnan(per["drama"])
    assert metrics.auprc(y, s, "macro") == pytest.approx((per["action"] + per["adventure"]) / 2)


def test_sample_labels_have_one_to_three_known_genres():
    labels = sample_labels(np.random.default_rng(0), 500)
    assert all(1 <= len(g) <= 3 and set(g) <= set(GENRES) for g in labels)
    share = multi_hot(labels).mean(0)
    assert share[GENRES.index("drama")] > share[GENRES.index("scifi")]
