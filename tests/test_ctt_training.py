import numpy as np
import torch

from ctt import metrics
from ctt.config import ModelConfig, TrainConfig
from ctt.models import build_model
from ctt.training import FitState, fit, predict


def _toy(n, rng, dim=16):
    """Genre c is present iff feature c fires in some keyframe: CTT's max over time finds it."""
    xs, ys = [], []
    for _ in range(n):
        t = int(rng.integers(2, 12))
        x = rng.normal(0, 0.3, (t, dim)).astype(np.float32)
        y = (rng.random(9) < 0.25).astype(np.float32)
        for c in np.flatnonzero(y):
            x[rng.integers(t), c] += 3.0
        xs.append(x)
        ys.append(y)
    return xs, np.stack(ys)


def _batches(xs, ys, bs=16):
    def gen():
        for i in range(0, len(xs), bs):
            chunk = xs[i:i + bs]
            T = max(len(x) for x in chunk)
            x = torch.zeros(len(chunk), T, xs[0].shape[1])
            for j, s in enumerate(chunk):
                x[j, :len(s)] = torch.from_numpy(s)
            yield {"x": x, "lengths": torch.tensor([len(s) for s in chunk]), "y": torch.from_numpy(ys[i:i + bs])}
    return gen


def test_fit_learns_and_keeps_best_weights():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tr, va = _toy(256, rng), _toy(64, rng)
    model = build_model(ModelConfig(name="ctt-c", n=32, hidden=32, dropout=0.1), 16)
    seen = []
    state = fit(model, _batches(*tr), _batches(*va), TrainConfig(max_epochs=25, patience=25, lr=3e-3),
                on_epoch_end=lambda s, m: seen.append(m))
    assert len(seen) == 25 and state.epoch == 24
    assert seen[-1]["train_loss"] < seen[0]["train_loss"]
    model.load_state_dict(state.best_state)
    probs, y = predict(model, _batches(*va)(), torch.device("cpu"))
    assert metrics.auprc(y, probs, "micro") == state.best_metric > 0.8


def test_early_stopping_and_resume():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    tr, va = _toy(32, rng), _toy(16, rng)
    model = build_model(ModelConfig(name="ctt-a", n=8), 16)
    cfg = TrainConfig(max_epochs=200, patience=3, lr=0.0)          # nothing improves after epoch 0
    state = fit(model, _batches(*tr), _batches(*va), cfg)
    assert state.best_epoch == 0 and state.epoch == 3 and state.bad_epochs == 3
    # resuming from a mid-run state goes on from the next epoch
    mid = FitState(epoch=4, best_metric=0.0, best_epoch=4, bad_epochs=0)
    state = fit(model, _batches(*tr), _batches(*va), TrainConfig(max_epochs=7, patience=20), state=mid)
    assert [h["epoch"] for h in state.history] == [5, 6]
