"""Two-Nets weight search and the SVM baselines, on constructed data (no cluster)."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from ctt import metrics, svm
from featurize.genres import GENRES
from ctt.config import BaselineConfig
from ctt.fusion import align, choose_weight, fuse, weight_grid


def test_weight_grid_is_the_papers():
    g = weight_grid(0.05)
    assert len(g) == 21 and g[0] == 1.0 and g[-1] == 0.0 and np.allclose(np.diff(g), -0.05)


def _two_views(rng, n=400, C=9):
    """Visual sees genres 0-4 well, audio sees 5-8 well; each is noise on the others."""
    y = (rng.random((n, C)) < 0.3).astype(float)
    signal = y + rng.normal(0, 0.35, y.shape)
    noise = rng.random(y.shape)
    pv = np.where(np.arange(C) < 5, signal, noise)
    pa = np.where(np.arange(C) < 5, noise, signal)
    return y, pv, pa


def test_choose_weight_picks_the_best_weight_on_val():
    rng = np.random.default_rng(0)
    y, pv, pa = _two_views(rng)
    w, scores = choose_weight(y, pv, pa, weight_grid())
    brute = max(weight_grid(), key=lambda v: metrics.auprc(y, v * pv + (1 - v) * pa))
    assert w == pytest.approx(brute)
    assert 0.0 < w < 1.0                                   # both views help
    assert scores[w] > max(scores[1.0], scores[0.0])       # better than either alone
    # a useless audio view gets weight 1.0
    w_only_visual, _ = choose_weight(y, pv, rng.random(y.shape) * 0, weight_grid())
    assert w_only_visual == 1.0


def test_fuse_keeps_visual_where_audio_is_missing():
    pv = np.array([[0.9, 0.1], [0.2, 0.8]])
    pa = np.array([[0.1, 0.5], [np.nan, np.nan]])
    out = fuse(pv, pa, 0.6)
    np.testing.assert_allclose(out, [[0.6 * 0.9 + 0.4 * 0.1, 0.6 * 0.1 + 0.4 * 0.5], [0.2, 0.8]])


def test_align_by_trailer_id():
    vis = (["a", "b", "c"], np.eye(3), np.full((3, 3), 0.5))
    aud = (["c", "a"], np.eye(3)[[2, 0]], np.array([[0.3] * 3, [0.1] * 3]))
    ids, y, pv, pa = align(vis, aud)
    assert ids == ["a", "b", "c"]
    np.testing.assert_allclose(pa[0], 0.1)
    assert np.isnan(pa[1]).all()
    np.testing.assert_allclose(pa[2], 0.3)


def test_param_grid_is_the_papers():
    grid = svm.param_grid(BaselineConfig())
    assert len(grid) == 5 * (1 + 10)            # C x (linear + rbf x 10 gammas)
    assert {g["C"] for g in grid} == {0.1, 1.0, 10.0, 100.0, 1000.0}
    assert all("gamma" not in g for g in grid if g["kernel"] == "linear")
    assert sorted({g["gamma"] for g in grid if g["kernel"] == "rbf"}) == pytest.approx([0.1 * i for i in range(1, 11)])


def test_svm_baseline_gives_probabilities_that_rank_and_are_calibrated():
    rng = np.random.default_rng(1)
    n, d = 300, 6
    X = rng.normal(size=(n, d)) * [1, 10, 100, 1, 1, 1]    # unscaled features: the scaler matters
    X[rng.random(X.shape) < 0.02] = np.nan                # gaps are imputed
    logits = np.stack([np.nan_to_num(X[:, c % d] / [1, 10, 100, 1, 1, 1][c % d]) * 2 for c in range(9)], 1)
    Y = (rng.random((n, 9)) < 1 / (1 + np.exp(-logits))).astype(float)
    Y[:, 8] = 0                                            # a genre never seen in train
    tr, va, te = slice(0, 180), slice(180, 240), slice(240, 300)
    grid = svm.param_grid(BaselineConfig(C=[0.1, 1.0], gamma=[0.1]))
    scores = np.stack([svm.val_scores(X[tr], Y[tr], X[va], Y[va], p) for p in grid])
    assert scores.shape == (len(grid), 9) and np.isnan(scores[:, 8]).all()
    best = svm.select(scores)
    (pv, pt) = svm.fit_predict(X[tr], Y[tr], [grid[i] for i in best], [X[va], X[te]])
    assert pt.shape == (60, 9) and np.all((pt >= 0) & (pt <= 1))
    assert np.allclose(pt[:, 8], 0.0)                     # constant: the train frequency
    for c in range(6):
        assert average_precision_score(Y[te][:, c], pt[:, c]) > Y[te][:, c].mean() + 0.15
    # calibrated: mean predicted probability close to the observed rate of the genre
    assert np.abs(pt[:, :6].mean(0) - Y[te][:, :6].mean(0)).max() < 0.15


def test_thresholds_maximise_f1_per_genre():
    from sklearn.metrics import f1_score

    from ctt.thresholds import best_f1_thresholds, predicted_genres
    rng = np.random.default_rng(3)
    y = (rng.random((200, 9)) < 0.3).astype(float)
    y[:, 7] = 0                                             # no positive: default threshold
    probs = np.clip(0.35 * y + rng.random(y.shape) * 0.7, 0, 1)
    th = best_f1_thresholds(y, probs)
    assert th["scifi"] == 0.5
    for c, g in enumerate(GENRES[:7]):
        best = f1_score(y[:, c], probs[:, c] >= th[g])
        for cand in np.linspace(0, 1, 101):                 # no cut on a grid does better
            assert f1_score(y[:, c], probs[:, c] >= cand, zero_division=0) <= best + 1e-9
    pred = predicted_genres(probs[:3], th)
    assert pred == [[g for c, g in enumerate(GENRES) if probs[i, c] >= th[g]] for i in range(3)]


def test_per_genre_weights_follow_the_better_member_and_shrink_with_few_positives():
    from ctt.fusion import fuse, per_genre_weights, weight_grid
    rng = np.random.default_rng(4)
    n = 200
    y = (rng.random((n, 9)) < 0.3).astype(float)
    y[:, 8] = 0                                                    # no positive: the global weight
    pv = np.clip(0.5 * y + 0.5 * rng.random(y.shape), 0, 1)        # visual: good everywhere ...
    pa = rng.random(y.shape)                                       # ... audio: noise ...
    pa[:, 0] = y[:, 0] * 0.9 + 0.05                                 # ... except a perfect genre 0
    pv[:, 0] = rng.random(n)
    pa[:5] = np.nan                                                # trailers without audio
    w = per_genre_weights(y, pv, pa, weight_grid(0.05), 0.7, shrink=0.0)
    assert w[0] < 0.5 and w[8] == 0.7 and (w[1:8] >= 0.5).all()    # genre 0 leans on audio
    assert average_precision_score(y[5:, 0], fuse(pv, pa, w)[5:, 0]) == 1.0
    npos = int((y[5:, 0] > 0.5).sum())
    shrunk = per_genre_weights(y, pv, pa, weight_grid(0.05), 0.7, shrink=10.0)
    assert shrunk[0] == pytest.approx(round((npos * w[0] + 10 * 0.7) / (npos + 10), 6), abs=1e-6)
    f = fuse(pv, pa, w)
    np.testing.assert_allclose(f[:5], pv[:5])                     # no audio: the visual probabilities
    np.testing.assert_allclose(f[5:, 1], w[1] * pv[5:, 1] + (1 - w[1]) * pa[5:, 1])


def test_cv_scores_equal_sklearn_cross_validation():
    from sklearn.model_selection import StratifiedKFold
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 4))
    Y = np.zeros((60, 9))
    Y[:, 0] = (X[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(float)
    Y[:3, 1] = 1                                                     # 3 positives: 3 folds
    params = {"kernel": "linear", "C": 1.0}
    got = svm.cv_scores(X, Y, params, folds=5, seed=0)
    want = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, Y[:, 0]):
        m = svm.fit_genre(X[tr], Y[tr, 0], params, 0, probability=False)
        want.append(average_precision_score(Y[te, 0], m.decision_function(X[te])))
    assert got[0] == pytest.approx(np.mean(want)) and got[0] > 0.8
    assert np.isfinite(got[1]) and np.isnan(got[2])                  # no positive: no score


def test_grid_scored_by_decision_function_chooses_what_probabilities_choose():
    """AU(PRC) needs only the order of the scores, and Platt scaling keeps the decision
    function's order: the cheap scoring picks the same grid points."""
    rng = np.random.default_rng(5)
    n, d = 240, 8
    X = rng.normal(size=(n, d))
    Y = (rng.random((n, 9)) < 1 / (1 + np.exp(-2 * X[:, [c % d for c in range(9)]]))).astype(float)
    tr, va = slice(0, 160), slice(160, 240)
    grid = svm.param_grid(BaselineConfig(C=[0.1, 1.0, 10.0], gamma=[0.1, 0.5]))
    dec = np.stack([svm.val_scores(X[tr], Y[tr], X[va], Y[va], p, scores="decision") for p in grid])
    prob = np.stack([svm.val_scores(X[tr], Y[tr], X[va], Y[va], p, scores="probability") for p in grid])
    diff = np.abs(dec - prob)
    # the same order up to Platt's rounding, but where libsvm's internal-CV sigmoid comes out
    # reversed (a near-constant model): the probability order is then the decision order upside down
    assert np.median(diff) < 1e-3 and (diff < 0.01).mean() >= 0.9
    assert (svm.select(dec) == svm.select(prob)).mean() >= 7 / 9
    m = svm.fit_genre(X[tr], Y[tr, 0], grid[0], probability=False)
    assert not hasattr(m[-1], "probA_") or m[-1].probA_.size == 0   # no Platt fits in the cheap path
