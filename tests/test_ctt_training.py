import numpy as np
import pytest
import torch

from ctt import metrics
from ctt.config import ModelConfig, TrainConfig
from ctt.models import build_model
from ctt.training import FitState, fit, probabilities


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
    probs, y = probabilities(model, _batches(*va)(), torch.device("cpu"))
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


def test_learning_rate_schedules_are_pure_functions_of_the_fit_state():
    from ctt.config import TrainConfig
    from ctt.training import FitState, learning_rate
    s = FitState()
    assert learning_rate(TrainConfig(lr=0.1), s, 7) == 0.1                       # the paper: constant
    cos = TrainConfig(lr=0.1, lr_schedule="cosine", max_epochs=11, lr_min=0.01)
    assert learning_rate(cos, s, 0) == pytest.approx(0.1) and learning_rate(cos, s, 10) == pytest.approx(0.001)
    assert learning_rate(cos, s, 5) == pytest.approx(0.001 + 0.5 * (0.1 - 0.001))
    s.lr_scale = 0.25
    assert learning_rate(TrainConfig(lr=0.1, lr_schedule="plateau"), s, 3) == pytest.approx(0.025)


def test_plateau_cuts_the_rate_and_early_stopping_ends_the_fit():
    from ctt.config import TrainConfig
    from ctt.training import fit
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 9)

        def forward(self, x, lengths=None):
            return self.lin(x[:, 0])

    net = Net()
    x = torch.zeros(8, 1, 1)
    batch = {"x": x, "lengths": torch.ones(8, dtype=torch.long), "y": torch.zeros(8, 9)}
    batch["y"][:4, 0] = 1                                         # nothing to learn from a zero input
    cfg = TrainConfig(lr=0.1, max_epochs=50, patience=6, lr_schedule="plateau", lr_patience=2, lr_factor=0.5)
    state = fit(net, lambda: [batch], lambda: [batch], cfg)
    lrs = [h["lr"] for h in state.history]
    assert state.ended_by(cfg) == "early_stopping" and len(lrs) < 50
    assert lrs[0] == 0.1 and min(lrs) < 0.1 and sorted(lrs, reverse=True) == lrs   # cut, never raised
    assert TrainConfig().lr_schedule == "none"
