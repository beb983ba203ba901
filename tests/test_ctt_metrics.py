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


def _labels_and_scores(seed=3, n=80):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 9)) < 0.3).astype(float)
    y[:, 4] = 0                                              # a genre with no positive trailer
    return y, np.clip(0.6 * y + 0.5 * rng.random(y.shape), 0, 1)


def test_decisions_at_thresholds_equal_sklearn():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    y, s = _labels_and_scores()
    th = {g: 0.3 + 0.05 * i for i, g in enumerate(GENRES)}
    pred = (s >= np.array([th[g] for g in GENRES])).astype(int)
    m = metrics.decisions(y, s, th)
    present = y.sum(0) > 0
    assert m["f1_micro"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert m["precision_micro"] == pytest.approx(precision_score(y, pred, average="micro"))
    assert m["recall_micro"] == pytest.approx(recall_score(y, pred, average="micro"))
    assert m["f1_macro"] == pytest.approx(f1_score(y[:, present], pred[:, present], average="macro"))
    assert m["f1_samples"] == pytest.approx(f1_score(y, pred, average="samples", zero_division=0))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["f1_action"] == pytest.approx(f1_score(y[:, 0], pred[:, 0]))
    assert np.isnan(m[f"f1_{GENRES[4]}"])                    # undefined without positives, as AU(PRC)
    at_half = metrics.decisions(y, s)                         # no thresholds: 0.5 for every genre
    assert at_half["f1_micro"] == pytest.approx(f1_score(y, (s >= 0.5).astype(int), average="micro"))


def test_ece_by_hand():
    # bins of width 0.1: probabilities 0.05 (x2, one positive), 0.95 (x2, both positive)
    y = np.array([[0.0], [1.0], [1.0], [1.0]])
    s = np.array([[0.05], [0.05], [0.95], [0.95]])
    # |0.5 - 0.05| * 2/4 + |1.0 - 0.95| * 2/4
    assert metrics.ece(y, s) == pytest.approx(0.45 * 0.5 + 0.05 * 0.5)
    count, conf, acc = metrics.calibration_bins(y, s)
    assert count.tolist() == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2] and acc[9] == 1.0 and np.isnan(conf[1])
    assert metrics.ece(np.ones((3, 1)), np.ones((3, 1))) == 0.0       # 1.0 falls in the last bin
    y, s = _labels_and_scores()
    m = metrics.evaluate(y, s, "test_")
    assert {"test_ece", "test_ece_action", "test_f1_micro", "test_f1_macro"} <= set(m)
    assert 0 <= m["test_ece"] <= 1
