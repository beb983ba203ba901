"""CTT-MMC-S, the LSTM baseline, and the batches that feed them."""
import numpy as np
import pyarrow as pa
import pytest
import torch

from ctt.config import ModelConfig
from ctt.data import Collate, collate_frames, collate_spectrograms, cut_sequences, part_draws
from ctt.config import MODELS, input_column
from ctt.models import AudioCTT, LSTMBaseline, build_model, num_params, set_input_stats
from featurize.audio import BINS as SPEC_BINS
from featurize.audio import FRAMES as SPEC_FRAMES
from featurize.audio import SPEC_SIZE


def test_lstm_parameter_count_in_paper_range():
    n = num_params(build_model(ModelConfig(name="lstm"), feature_dim=2048))
    # 4 * (2048*256 + 256*256 + 2*256) LSTM weights + 256*9 + 9 classes
    assert n == 4 * (2048 * 256 + 256 * 256 + 2 * 256) + 256 * 9 + 9
    assert 2.2e6 <= n <= 2.5e6, n      # paper: about 2.3M


def test_ctt_s_parameter_count_does_not_depend_on_p():
    counts = {num_params(build_model(ModelConfig(name="ctt-s", parts=p), feature_dim=2048)) for p in (3, 11)}
    # BatchNorm(513) + CTT(513 -> 256, f=3) + linear head
    assert counts == {2 * 513 + (513 * 3 * 256 + 256) + (256 * 9 + 9)}


def test_ctt_s_forward_is_mean_of_shared_ctt_over_parts():
    torch.manual_seed(0)
    model = AudioCTT(n=8, f=3).eval()
    set_input_stats(model, {"mean_spectrogram": torch.rand(SPEC_FRAMES, SPEC_BINS)})
    x = torch.rand(2, 5, SPEC_FRAMES, SPEC_BINS).half()
    out = model(x)
    assert out.shape == (2, 9)
    s = x.float()[0] - model.mean_spectrogram                    # (p, T, F)
    s = model.norm(s.transpose(1, 2)).transpose(1, 2)
    ref = model.head(model.ctt(s).mean(0, keepdim=True))
    torch.testing.assert_close(out[:1], ref)
    # the order of the parts does not matter (average pooling)
    torch.testing.assert_close(model(x[:, torch.randperm(5)]), out)


def padded(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences (t_i, m) -> a zero-padded batch (B, max t, m) and their lengths."""
    batch = torch.zeros(len(seqs), max(len(s) for s in seqs), seqs[0].shape[1])
    for i, s in enumerate(seqs):
        batch[i, :len(s)] = s
    return batch, torch.tensor([len(s) for s in seqs])


def test_lstm_padding_is_masked():
    torch.manual_seed(0)
    model = LSTMBaseline(m=6, hidden=5).eval()
    seqs = [torch.randn(n, 6) for n in (1, 4, 7)]
    out = model(*padded(seqs))
    for i, s in enumerate(seqs):
        torch.testing.assert_close(out[i], model(s[None], torch.tensor([len(s)]))[0])


def model_input(name: str, length: int, m: int = 64) -> torch.Tensor:
    """A batch of 2 for any registered model: keyframe sequences, or p=4 spectrogram draws."""
    if input_column(name) == "spectrograms":
        return torch.rand(2, 4, SPEC_FRAMES, SPEC_BINS, requires_grad=True)
    return torch.randn(2, length, m, requires_grad=True)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("length", [1, 2, 3, 40])
def test_every_model_maps_a_batch_to_genre_logits_and_trains(name, length):
    model = build_model(ModelConfig(name=name, n=16, hidden=16), feature_dim=64)
    x, lengths = model_input(name, length), torch.tensor([length, max(1, length - 1)])
    out = model(x, lengths)
    assert out.shape == (2, 9)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_is_its_head_over_its_features(name):
    model = build_model(ModelConfig(name=name, n=16, hidden=16), feature_dim=64).eval()
    x, lengths = model_input(name, 5), torch.tensor([5, 3])
    v = model.forward_features(x, lengths)
    assert v.shape == (2, 16)
    torch.testing.assert_close(model.forward_head(v), model(x, lengths))


@pytest.mark.parametrize("length", [1, 2, 5, 11, 12, 50, 51])
def test_part_draws_one_per_part_and_cover_short_sequences(length):
    p = 11
    rng = np.random.default_rng(0)
    draws = np.concatenate([part_draws(np.array([length]), p, rng) for _ in range(400)])   # (400, p)
    assert draws.shape == (400, p) and draws.min() >= 0 and draws.max() < length
    bounds = [(j * length // p, max((j + 1) * length // p, j * length // p + 1)) for j in range(p)]
    for j, (lo, hi) in enumerate(bounds):
        assert set(np.unique(draws[:, j])) == set(range(lo, hi))   # inside its part, and all of it
    assert set(np.unique(draws)) == set(range(length))              # every window can be drawn
    assert np.all(np.diff(draws, axis=1) >= 0)                      # parts follow the audio in order


def test_part_draws_refuse_trailers_without_audio():
    with pytest.raises(ValueError, match="without audio"):
        part_draws(np.array([3, 0]), 4, np.random.default_rng(0))


def _spec_table(lengths):
    rng = np.random.default_rng(1)
    seqs = [rng.random((n, SPEC_SIZE)).astype(np.float16) for n in lengths]
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat = np.concatenate(seqs).ravel()
    col = pa.ListArray.from_arrays(offsets, pa.FixedSizeListArray.from_arrays(pa.array(flat), SPEC_SIZE))
    return pa.table({"spectrograms": col, "genres": [["drama"]] * len(lengths)}), seqs


def test_collate_spectrograms_draws_rows_of_each_trailer():
    table, seqs = _spec_table([3, 20, 1])
    b = collate_spectrograms(table, parts=4, rng=np.random.default_rng(0))
    assert b["x"].shape == (3, 4, SPEC_FRAMES, SPEC_BINS) and b["x"].dtype == torch.float16
    assert b["lengths"].tolist() == [3, 20, 1]
    for i, s in enumerate(seqs):
        for j in range(4):
            row = b["x"][i, j].reshape(-1).numpy()
            assert any(np.array_equal(row, w) for w in s)      # a window of this trailer, not a neighbour's


def test_lstm_collate_cuts_to_max_steps():
    flat = np.arange(10, dtype=np.float32).reshape(10, 1)
    kept, lengths = cut_sequences(flat, np.array([2, 8]), 5)
    assert lengths.tolist() == [2, 5]
    assert kept[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6]
    dim = 4
    t = pa.table({"frames": pa.array([np.ones((n, dim), np.float32).tolist() for n in (3, 130)],
                                     type=pa.list_(pa.list_(pa.float32(), dim))),
                  "genres": [["action"], ["comedy"]]})
    b = Collate(ModelConfig(name="lstm"))(t)
    assert b["x"].shape == (2, 120, dim) and b["lengths"].tolist() == [3, 120]
    assert collate_frames(t)["x"].shape == (2, 130, dim)
