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


def test_calibration_fits_on_val_and_keeps_the_ranking():
    from scipy.stats import rankdata
    from sklearn.linear_model import LogisticRegression

    from ctt import calibration
    rng = np.random.default_rng(5)
    z = rng.normal(-0.5, 1.5, (400, 9))                     # the true log-odds of each genre
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(float)
    p = 1 / (1 + np.exp(-3 * z))                             # right order, overconfident: a temperature of 3
    for method in ("temperature", "platt"):
        params = calibration.fit(y[:200], p[:200], method)
        q = calibration.apply(p[200:], params)
        assert metrics.ece(y[200:], q) < 0.5 * metrics.ece(y[200:], p[200:]), method
        if method == "temperature":                          # one scale per genre: the same order, the same AP
            assert all(params[g][1] == 0.0 and 0.2 < params[g][0] < 0.6 for g in GENRES)   # 1 / 3 up to noise
            np.testing.assert_array_equal(rankdata(q[:, 0]), rankdata(p[200:, 0]))
            assert metrics.auprc(y[200:], q, "macro") == pytest.approx(metrics.auprc(y[200:], p[200:], "macro"))
    # on a large split the prior is negligible: Platt equals an unregularised logistic regression
    zz = rng.normal(-0.5, 1.5, (20000, 9))
    yy = (rng.random(zz.shape) < 1 / (1 + np.exp(-(0.5 * zz + 0.3)))).astype(float)
    pp = 1 / (1 + np.exp(-zz))
    ref = LogisticRegression(C=1e9, max_iter=1000).fit(calibration.logit(pp[:, 2])[:, None], yy[:, 2].astype(int))
    assert calibration.fit(yy, pp, "platt")[GENRES[2]] == pytest.approx([ref.coef_[0, 0], ref.intercept_[0]],
                                                                         rel=0.02, abs=0.01)
    separable = (p[:20] > 0.5).astype(float)                 # validation the model separates perfectly
    assert all(1 < v[0] < 10 and abs(v[1]) < 2 for v in calibration.fit(separable, p[:20], "platt").values())
    none = np.full((2, 9), np.nan)
    assert np.isnan(calibration.apply(none, calibration.fit(y[:200], p[:200], "platt"))).all()
    assert calibration.apply(p, {}) is p
    one_class = np.zeros((10, 9))
    assert calibration.fit(one_class, p[:10], "platt")[GENRES[0]] == [1.0, 0.0]


def test_weighted_ap_equals_scikit_learn_with_sample_weight():
    from sklearn.metrics import average_precision_score
    from ctt.metrics import weighted_ap
    rng = np.random.default_rng(0)
    y = (rng.random(40) < 0.3).astype(int)
    s = np.round(rng.random(40), 1)                      # many ties
    w = rng.multinomial(40, np.full(40, 1 / 40), size=30)
    got = weighted_ap(y, s, w)
    for r in range(30):
        if (w[r] * y).sum() == 0:
            assert np.isnan(got[r])
        else:
            assert got[r] == pytest.approx(average_precision_score(y, s, sample_weight=w[r]), abs=1e-12)


def test_bootstrap_difference_is_paired_and_centred_on_the_difference():
    from ctt.metrics import auprc, bootstrap_difference
    rng = np.random.default_rng(1)
    y = (rng.random((60, 9)) < 0.3).astype(int)
    good = y + rng.normal(0, 0.4, y.shape)
    bad = y + rng.normal(0, 1.5, y.shape)
    for average in ("macro", "micro"):
        d, lo, hi = bootstrap_difference(y, good, bad, average, n=400)
        assert d == pytest.approx(auprc(y, good, average) - auprc(y, bad, average))
        assert 0 < lo < d < hi                            # clearly better: the interval excludes 0
        d0, lo0, hi0 = bootstrap_difference(y, good, good, average, n=100)
        assert d0 == lo0 == hi0 == 0                      # paired: the same scores never differ
    _, lo, hi = bootstrap_difference(y, good, good + rng.normal(0, 0.05, y.shape), n=400)
    assert lo < 0 < hi                                    # a tiny perturbation: within noise


def test_bootstrap_difference_of_several_runs_is_their_mean():
    from ctt.metrics import auprc, bootstrap_difference
    rng = np.random.default_rng(2)
    y = (rng.random((50, 9)) < 0.3).astype(int)
    runs = np.stack([y + rng.normal(0, s, y.shape) for s in (0.5, 0.8, 1.1)])
    ref = y + rng.normal(0, 0.8, y.shape)
    for average in ("macro", "micro"):
        d, lo, hi = bootstrap_difference(y, runs, ref, average, n=300)
        assert d == pytest.approx(np.mean([auprc(y, r, average) for r in runs]) - auprc(y, ref, average))
        assert lo < d < hi
        one = bootstrap_difference(y, runs[:1], ref, average, n=300)
        assert one == bootstrap_difference(y, runs[0], ref, average, n=300)   # (1, N, C) is one run


def test_probe_check_judges_a_repeat_group_by_its_seeds_mean():
    """The report's probe check: a single run is paired with the probe on the trailers both
    scored; a run of a repeat group stands for its seeds (their mean difference)."""
    from ctt.experiment.report import RunResult, versus
    rng = np.random.default_rng(3)
    y = (rng.random((40, 9)) < 0.3).astype(float)
    ids = [f"t{i:02d}" for i in range(40)]
    probe = RunResult("probe-frames", "p", "p", ids[::-1], y[::-1], (y + rng.normal(0, 0.6, y.shape))[::-1], {})
    seeds = [y + rng.normal(0, s, y.shape) for s in (0.3, 1.5, 1.5)]
    one = RunResult("ctt-c", "a", "a", ids, y, seeds[0], {})
    d, verdict = versus(one, probe)
    assert d["macro"][0] == pytest.approx(one.metrics["test_auprc_macro"] - probe.metrics["test_auprc_macro"])
    assert verdict == "above its probe"
    group = RunResult("ctt-c", "a", "a", ids, y, seeds[0], {}, members=seeds)
    d, verdict = versus(group, probe)
    mean = np.mean([metrics.auprc(y, p, "macro") for p in seeds])
    assert d["macro"][0] == pytest.approx(mean - probe.metrics["test_auprc_macro"])
    assert verdict == "**below its probe**"                # two of the three seeds are far worse
