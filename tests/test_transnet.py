"""featurize.shots.detector=transnetv2: the network against its package, the shot and keyframe
rules, the decode pass's small frames and candidates, and the option end to end through
`jobs/featurize.py` on the Ray cluster (the detector in the embedder actors)."""
from __future__ import annotations

import json
import random

import av
import numpy as np
import pytest
import torch

from featurize import shot_placement, transnet
from featurize.config import FeaturizeConfig, ShotConfig
from benchmarks.shot_eval import score
from featurize.shots import CandidatePool
from featurize.sample_trailers import SampleSpec, render_with_transitions
from featurize.video import CANDIDATES_PER_S
from tests.conftest import TINY

LEARNED = ["featurize.shots.detector=transnetv2"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A rendered trailer with cuts, dissolves and fades, and its ground truth."""
    path = tmp_path_factory.mktemp("transnet") / "clip.mp4"
    truth = render_with_transitions(path, ["action", "drama"], seed=4,
                                    spec=SampleSpec(min_seconds=10, max_seconds=12, gradual=0.5))
    return str(path), truth


def _small_frames(path: str) -> np.ndarray:
    """Every frame at 48 x 27, scaled as the package's own ffmpeg call does."""
    with av.open(path) as c:
        return np.stack([f.reformat(48, 27, "rgb24", interpolation="BICUBIC").to_ndarray() for f in c.decode(video=0)])


def test_batched_windows_give_the_packages_probabilities_and_leave_global_state_alone(clip):
    torch.manual_seed(7)
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_rng_state(), np.random.get_state()[1].copy(),
              random.getstate())
    transnet.load.cache_clear()
    det = transnet.TransNetV2Detector("cpu", windows_per_batch=2)
    after = (torch.are_deterministic_algorithms_enabled(), torch.get_rng_state(), np.random.get_state()[1], random.getstate())
    assert before[0] == after[0] and torch.equal(before[1], after[1])
    assert np.array_equal(before[2], after[2]) and before[3] == after[3]
    frames = _small_frames(clip[0])
    ours = det.probabilities(frames)
    theirs, _ = det.model.predict_frames(torch.from_numpy(frames), quiet=True)
    assert ours.shape == (len(frames),) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5)
    # ... and its shots are the package's scenes (the clip opens on a shot, not a transition)
    scenes = det.model.predictions_to_scenes(theirs.numpy())
    assert shot_placement.shot_starts(ours) == scenes[:, 0].tolist()
    with pytest.raises(ValueError, match="27, 48, 3"):
        det.probabilities(frames[:, :20])


def test_windows_cover_every_frame_once_with_edge_padding():
    for n in (1, 49, 50, 51, 137):
        w = transnet.windows(n)
        assert w.shape == (-(-n // transnet.STEP), transnet.WINDOW) and w.min() == 0 and w.max() == n - 1
        scored = w[:, transnet.CONTEXT:transnet.CONTEXT + transnet.STEP].ravel()[:n]
        assert scored.tolist() == list(range(n))
    assert transnet.windows(3)[0, :26].tolist() == [0] * 26       # the first frame repeated before the start


def test_shot_starts_follow_each_transition_run():
    p = np.array([0.1, 0.2, 0.9, 0.1, 0.1, 0.6, 0.7, 0.8, 0.2, 0.1, 0.95])
    assert shot_placement.shot_starts(p) == [0, 3, 8]                   # a transition still running at the end opens nothing
    assert shot_placement.shot_starts(p, threshold=0.65) == [0, 3, 8]
    assert shot_placement.shot_starts(p, threshold=0.75) == [0, 3, 8]
    assert shot_placement.shot_starts(p, threshold=0.85) == [0, 3]
    assert shot_placement.shot_starts(np.zeros(5)) == [0] and shot_placement.shot_starts(np.zeros(0)) == [0]


def test_place_takes_the_candidate_nearest_each_shot_centre():
    cands = np.arange(0, 40, 4)                                   # every 4th frame of 40
    p = shot_placement.place([0, 10, 12, 30], 40, cands)
    # shots [0,10) centre 4.5 -> 4; [10,12) holds no candidate; [12,30) centre 20.5 -> 20; [30,40) centre 34.5 -> 36 (|1.5| vs 32's |2.5|)
    assert cands[p.chosen].tolist() == [4, 20, 36]
    assert p.shot_starts.tolist() == [0, 12, 30] and p.shot_lengths.tolist() == [10, 18, 10] and p.cuts == [10, 12, 30]
    tie = shot_placement.place([0, 8], 16, np.arange(16))               # centre 3.5: 3 and 4 tie, the earlier wins
    assert tie.chosen.tolist() == [3, 11]
    capped = shot_placement.place(list(range(0, 40, 4)), 40, np.arange(40), max_keyframes=4)
    assert len(capped.chosen) == 4 and capped.chosen[0] == 1 and capped.chosen[-1] == 37


def test_candidate_pool_is_bounded_and_evenly_spaced():
    made = []
    pool = CandidatePool(cap=8)
    for i in range(100):
        pool.push(i, i / 10, lambda i=i: made.append(i) or i)
    idx = [c[0] for c in pool.items]
    assert len(idx) <= 8 and idx[0] == 0 and len(set(np.diff(idx))) == 1 and pool.stride == 16
    assert idx == list(range(0, 100, 16))
    assert len(made) < 100                                        # frames off the stride are never converted


def test_decode_keeps_small_frames_and_candidates_then_places_the_shots(clip):
    from featurize.extract import decode
    from featurize.backbone import keyframe_geometry
    from featurize.video import decode_trailer
    path, truth = clip
    cfg = FeaturizeConfig(shots=ShotConfig(detector="transnetv2", candidates=64))
    d = decode_trailer(path, cfg, keyframe_geometry(cfg.backbone))
    assert d.shots_pending and d.thumbs.shape == (d.n_frames, 27, 48, 3)
    np.testing.assert_array_equal(d.thumbs, _small_frames(path))
    assert len(d.candidates) == len(d.keyframes) == len(d.frame_times) <= 64 and d.candidates[0] == 0
    assert len(set(np.diff(d.candidates))) == 1                   # evenly spaced over the whole trailer
    placed = decode(path, cfg)
    assert not placed.shots_pending and len(placed.keyframes) == len(placed.shot_starts) == len(placed.cuts) + 1
    s = score(truth, placed.cuts)
    assert s.prf("all")[2] >= 0.9, (placed.cuts, truth)
    hsv = decode_trailer(path, FeaturizeConfig(), keyframe_geometry(cfg.backbone))   # the default: no small frames
    assert not hsv.shots_pending and hsv.thumbs is None


def test_inspect_trailer_draws_the_learned_detectors_curve_and_cuts(clip, tmp_path):
    from featurize.qa import inspect_trailer
    from featurize.extract import decode
    cfg = FeaturizeConfig(shots=ShotConfig(detector="transnetv2"))
    out = inspect_trailer(clip[0], cfg, tmp_path, "clip")
    d = decode(clip[0], cfg)
    assert out["cuts"] == len(d.cuts) > 0 and out["keyframes"] == len(d.keyframes) == len(d.cuts) + 1
    assert all((tmp_path / f"clip_{k}.png").stat().st_size > 10_000 for k in ("keyframes", "shots"))


def test_a_row_the_detector_cannot_read_fails_at_stage_shots(clip):
    from featurize.extract import decode_row, place_rows
    from ctt.config import load_config
    cfg = load_config(None, TINY + LEARNED).featurize
    rows = [decode_row({"trailer_id": t, "path": clip[0]}, cfg) for t in ("good", "bad")]
    rows[1]["thumbs"] = rows[1]["thumbs"][:, :10]                 # not what the network reads
    batch = {k: [r[k] for r in rows] for k in rows[0]}
    out = place_rows(batch, transnet.TransNetV2Detector("cpu"), cfg)
    assert out["error_stage"] == ["", "shots"] and "27, 48, 3" in out["error_message"][1]
    assert not set(out) & {"thumbs", "candidates", "motion"}
    assert len(out["keyframes"][0]) == len(out["shot_starts"][0]) < len(rows[0]["keyframes"])


@pytest.mark.slow
def test_featurize_job_with_transnetv2_on_the_cluster(ray_head, mlflow_server, tmp_path, monkeypatch, capsys):
    """Through `jobs/featurize.py` on the two-node cluster: the embedder actors run the detector;
    the store's shots match the rendered truth, every keyframe is its shot's centre frame,
    VLLF reads those shots, the settings say which detector ran, and a served model's
    in-process `extract` gives the same rows."""
    import mlflow
    import pyarrow.parquet as pq

    from ctt.config import load_config
    from featurize import store
    from featurize.backbone import FrameEmbedder
    from featurize.extract import extract
    from jobs import featurize
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    videos = tmp_path / "videos"
    videos.mkdir()
    truth = {}
    for k in range(3):
        truth[f"t{k}"] = render_with_transitions(videos / f"t{k}.mp4", [["action"], ["drama"], ["horror"]][k], 30 + k,
                                                 SampleSpec(min_seconds=6, max_seconds=8, gradual=0.4))
    (videos / "broken.mp4").write_text("not a video")
    out = tmp_path / "store"
    args = ["--input", str(videos), "--output", str(out), *TINY, *LEARNED, "featurize.max_failed_fraction=0.5",
            "featurize.qa_samples=0", "tracking.experiment=transnet-it"]     # QA pictures: tested above
    assert featurize.main(args) == 0
    summary, _ = json.JSONDecoder().raw_decode(capsys.readouterr().out.split("featurize summary: ", 1)[1])
    assert (summary["done"], summary["failed"], summary["shot_detector"]) == (3, 1, "transnetv2")
    settings = json.loads((out / store.SETTINGS_FILE).read_text())["settings"]
    assert settings["shots"]["detector"] == "transnetv2" and settings["shots"]["candidates"] == 256
    rows = {r["trailer_id"]: r for r in store.read_table(str(out)).to_pylist()}
    total = None
    for tid, tr in truth.items():
        r = rows[tid]                          # a file's id: its name without the extension
        starts = r["shot_starts"]
        s = score(tr, starts[1:])
        total = s if total is None else total.add(s)
        edges = np.append(starts, r["n_frames"])
        centres = (edges[:-1] + edges[1:] - 1) / 2
        spacing = max(1, round(r["fps"] / CANDIDATES_PER_S))       # of the candidates (fewer than shots.candidates)
        assert np.all(np.abs(np.asarray(r["frame_times"]) * r["fps"] - centres) <= spacing / 2 + 1e-4), tid
        assert r["num_keyframes"] == len(starts) == len(r["frames"])
        assert r["vllf"][0] == pytest.approx(np.mean(np.diff(edges)) / r["fps"], rel=1e-5)
        assert r["av"][:5] == pytest.approx(r["vllf"], rel=1e-6)
    assert total.prf("all")[2] >= 0.9 and total.prf("gradual")[1] >= 0.75, total
    (err,) = pq.read_table(out / store.ERRORS_DIR).to_pylist()
    assert err["trailer_id"] == "broken" and err["stage"] == "decode"        # ids are file stems
    client = mlflow.MlflowClient(mlflow_server.url)
    (run,) = client.search_runs([client.get_experiment_by_name("transnet-it").experiment_id], "tags.kind = 'featurize'")
    assert run.data.params["featurizer.shots.detector"] == "transnetv2"
    # A served model featurizes the paths it is sent with the same detector, in its own process.
    cfg = load_config(None, TINY + LEARNED).featurize
    table, failed = extract([{"trailer_id": "t0.mp4", "path": str(videos / "t0.mp4")}], cfg,
                            FrameEmbedder(cfg.backbone, "cpu"))
    (served,) = table.to_pylist()
    assert not failed and served["shot_starts"] == rows["t0"]["shot_starts"]
    np.testing.assert_allclose(served["frames"], rows["t0"]["frames"], rtol=1e-4, atol=1e-5)
    # A rerun resumes (nothing to do); the paper's detector is refused on this store.
    assert featurize.main(args) == 0
    assert '"skipped": 4' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        featurize.main([a for a in args if a not in LEARNED])
    assert exit_.value.code == 1 and "differs in: shots" in capsys.readouterr().err
