"""The linear probe and the log-spectrogram option: pooled columns against NumPy, the C
choice against scikit-learn's cross-validation, and log1p applied where the option says."""
import numpy as np
import pytest
import torch

from ctt import probe
from featurize import store
from featurize.audio import BINS, FRAMES, SPEC_SIZE
from featurize.genres import GENRES


def _rows(rng, n=40, dim=6):
    rows = []
    for i in range(n):
        g = GENRES[(i // 3) % 3]
        frames = rng.normal(size=(int(rng.integers(1, 5)), dim)).astype(np.float32) + (2.0 if g == "action" else 0.0)
        spec = (rng.random((int(rng.integers(0, 3)), SPEC_SIZE)) * (5.0 if g == "comedy" else 1.0)).astype(np.float16)
        rows.append(store.trailer_row(dim, trailer_id=f"t{i:02d}", split=("train", "val", "test")[i % 3 if i > 5 else 0],
                                      genres=[g], frames=frames, spectrograms=spec, has_audio=len(spec) > 0))
    return rows


def test_pooled_columns_equal_numpy():
    rng = np.random.default_rng(0)
    rows = _rows(rng, 8)
    t = store.features_table(rows, 6)
    got = probe.pool_frames(t)
    for r, g in zip(rows, got):
        np.testing.assert_allclose(g, np.concatenate([r["frames"].mean(0), r["frames"].max(0)]), rtol=1e-6)
    spec = probe.pool_spectrograms(t)
    for r, g in zip(rows, spec):
        if not len(r["spectrograms"]):
            assert np.isnan(g).all()
            continue
        x = np.log1p(r["spectrograms"].astype(np.float32).reshape(-1, BINS))
        np.testing.assert_allclose(g, np.concatenate([x.mean(0), x.std(0)]), rtol=1e-4, atol=1e-6)


def test_probe_chooses_c_by_cross_validation_and_separates_an_easy_genre(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    rng = np.random.default_rng(1)
    out = str(tmp_path / "s")
    store.claim(out, {"feature_dim": 6})
    store.write_atomic(store.features_table(_rows(rng, 90), 6), out)
    ids, Xtr, Ytr = probe.load(out, "train", "frames")
    assert ids == sorted(ids) and Xtr.shape == (len(ids), 12)
    _, Xte, Yte = probe.load(out, "test", "frames")
    (pte,), chosen = probe.fit_predict(Xtr, Ytr, [Xte], seed=0)
    a = GENRES.index("action")
    assert average_precision_score(Yte[:, a], pte[:, a]) > 0.9           # keyframes shifted by +2: easy
    from sklearn.preprocessing import StandardScaler
    Xs = StandardScaler().fit_transform(Xtr)
    y = Ytr[:, a].astype(int)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    ref = [np.mean(cross_val_score(LogisticRegression(C=c, max_iter=2000), Xs, y, cv=cv, scoring="average_precision"))
           for c in probe.CS]
    assert chosen[a] == (probe.CS[int(np.argmax(ref))], pytest.approx(max(ref)))
    assert np.isnan(chosen[GENRES.index("thriller")][1])             # no positive: nothing to choose
    _, Xa, _ = probe.load(out, "train", "spectrograms")              # only trailers with audio
    assert Xa.shape[1] == 2 * BINS and np.isfinite(Xa).all()
    _, Xb, _ = probe.load(out, "train", "both")
    assert Xb.shape == (len(ids), 12 + 2 * BINS)


def test_log_spectrogram_option_compresses_before_the_mean_and_norm(tmp_path):
    from ctt.config import ModelConfig
    from ctt.data import mean_spectrogram
    from ctt.models import build_model
    torch.manual_seed(0)
    mag = build_model(ModelConfig(name="ctt-s", n=8), 0).eval()
    log = build_model(ModelConfig(name="ctt-s", n=8, spectrogram="log"), 0).eval()
    log.load_state_dict(mag.state_dict())
    x = torch.rand(2, 3, FRAMES, BINS) * 100
    torch.testing.assert_close(log(x), mag(torch.log1p(x)))
    rows = [store.trailer_row(1, trailer_id="a", split="train", has_audio=True,
                              spectrograms=np.full((2, SPEC_SIZE), 3.0, np.float16))]
    out = str(tmp_path / "s")
    store.claim(out, {"feature_dim": 1})
    store.write_atomic(store.features_table(rows, 1), out)
    assert mean_spectrogram(out, log=True) == pytest.approx(np.full((FRAMES, BINS), np.log1p(3.0)), rel=1e-6)
    assert mean_spectrogram(out) == pytest.approx(np.full((FRAMES, BINS), 3.0))
