"""Shot detectors measured side by side on videos with known transitions (edited from real
footage, `benchmarks.real_footage`, and rendered trailers): the project's own
(`featurize.shot_detectors`) and PySceneDetect's, scored against the truth
(`benchmarks.shot_eval`), beside PyAV decoding alone; and what the learned detector costs
in the decode pass and on the device."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import torch

from benchmarks import peers
from benchmarks.real_footage import Edit
from benchmarks.shot_eval import ShotScore, score
from ctt.config import load_config
from featurize import transnet
from featurize.backbone import keyframe_geometry
from featurize.config import FeaturizeConfig
from featurize.sample_trailers import SampleSpec, Transition, render_with_transitions
from featurize.shot_detectors import DETECTORS
from featurize.video import decode_trailer


def shot_clips(out: Path, n: int, size: tuple[int, int], seconds: float, fps: int = 24,
               gradual: float = 0.3) -> list[tuple[str, Edit]]:
    """Rendered trailers with hard cuts and (a `gradual` share of) dissolves and fades, and
    their ground truth; reused if present."""
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for k in range(n):
        path = out / f"shots_{size[0]}x{size[1]}_{int(seconds)}s_{k}.mp4"
        truth_file = path.with_suffix(".json")
        if not truth_file.exists():
            spec = SampleSpec(width=size[0], height=size[1], fps=fps, min_seconds=seconds,
                              max_seconds=seconds + 1e-3, gradual=gradual)
            truth = render_with_transitions(path, [["action"], ["drama"], ["horror", "thriller"]][k % 3], 100 + k, spec)
            truth_file.write_text(json.dumps([dataclasses.asdict(t) for t in truth]))
        clips.append((str(path), Edit([Transition(**t) for t in json.loads(truth_file.read_text())], [])))
    return clips


HSV_ROW = "ctt-mmc hsv (in the decode pass)"
PAPER_ROW = "ctt-mmc hsv, the paper's plain rule"
PAPER_RULE = Path(__file__).resolve().parents[1] / "configs" / "featurize_paper_shot_rule.yaml"
TRANSNET_ROW = "ctt-mmc transnetv2 (decode pass + network, CPU)"
DECODE_ROW = "PyAV decode only (reference)"


def detector_rows(clips: list[tuple[str, Edit]], cfg: FeaturizeConfig, tol: int = 1,
                  repeat: int = 1, warm_up: bool = True) -> dict[str, dict[str, Any]]:
    """Each detector over the same clips: precision, recall, F1 against the truth (cuts and
    gradual transitions apart, recall per kind, false boundaries per distractor) and frames
    per CPU-second: the project's detectors (`featurize.shot_detectors`), then
    PySceneDetect's, then decoding alone; the paper's rule as written
    (configs/featurize_paper_shot_rule.yaml) beside our default. A detector that is not installed gets a `skipped`
    row with the reason. `warm_up`: each detector first runs once untimed (a smoke run such
    as --quick skips it: its timings do not count)."""
    one = dataclasses.replace(cfg, decode_threads=1)
    fns: dict[str, Callable[[str], tuple[list[int], int]]] = {HSV_ROW: lambda p: peers.project_cuts(p, one)}
    paper = dataclasses.replace(one, shots=load_config(PAPER_RULE).featurize.shots)
    fns[PAPER_ROW] = lambda p: peers.project_cuts(p, paper)
    skipped: dict[str, dict[str, Any]] = {}
    missing = DETECTORS["transnetv2"].available()
    if missing:
        skipped[TRANSNET_ROW] = {"skipped": missing}
    else:
        learned = dataclasses.replace(one, shots=dataclasses.replace(one.shots, detector="transnetv2"))
        fns[TRANSNET_ROW] = lambda p: peers.project_cuts(p, learned)
    missing = peers.scenedetect_available()
    if missing:
        skipped["PySceneDetect"] = {"skipped": missing}
    else:
        for name in ("content", "adaptive"):
            fns[f"PySceneDetect {name.title()}Detector"] = lambda p, d=name: peers.scenedetect_cuts(p, d)
    fns[DECODE_ROW] = peers.decode_only
    rows = score_detectors(fns, clips, tol, repeat, warm_up) | skipped
    decode = rows.pop(DECODE_ROW)
    return rows | {DECODE_ROW: decode}                                 # the reference row last


def learned_shot_cost(clips: list[tuple[str, Edit]], cfg: FeaturizeConfig) -> dict[str, Any]:
    """What `shots.detector=transnetv2` costs, in its two places: the decode pass (every frame
    also scaled to 48x27, keyframe candidates kept) against the paper's, frames per CPU-second
    of one thread with audio as the pipeline runs; and the network alone on this process's
    device (the embedder actor's: a GPU where there is one)."""
    missing = DETECTORS["transnetv2"].available()
    if missing:
        return {"skipped": missing}
    out: dict[str, Any] = {}
    for name in ("hsv", "transnetv2"):
        c = dataclasses.replace(cfg, decode_threads=1, shots=dataclasses.replace(cfg.shots, detector=name))
        decode_trailer(clips[0][0], c, keyframe_geometry(c.backbone))  # warm-up
        frames, cpu, d = 0, 0.0, None
        for path, _ in clips:
            d, _, c_s = peers.timed(lambda p=path: decode_trailer(p, c, keyframe_geometry(c.backbone)))
            frames, cpu = frames + d.n_frames, cpu + c_s
        out[f"{name}_decode_fps"] = frames / cpu
    device = "cuda" if torch.cuda.is_available() else "cpu"
    det = transnet.TransNetV2Detector(device)
    det.probabilities(d.thumbs[:transnet.WINDOW])                        # warm-up
    _, wall, cpu = peers.timed(lambda: det.probabilities(d.thumbs))
    return out | {"device": device, "network_fps": len(d.thumbs) / wall, "network_fps_per_core": len(d.thumbs) / cpu,
                  "candidates": len(d.candidates), "candidates_mb": d.keyframes.nbytes / 2**20,
                  "small_frames_mb": d.thumbs.nbytes / 2**20, "frames": len(d.thumbs)}


def score_detectors(fns: dict[str, Callable[[str], tuple[list[int], int]]], clips: list[tuple[str, Edit]],
                    tol: int = 1, repeat: int = 1, warm_up: bool = True) -> dict[str, dict[str, Any]]:
    """Each detector over the clips: its counts against the truth, and frames per CPU-second
    from the best of `repeat` runs of each clip. The detectors take turns on each clip, so a
    change in the machine's speed over the run (other tenants, clock) falls on all of them
    alike rather than on whichever ran then."""
    for fn in fns.values() if warm_up else ():
        fn(clips[0][0])                                               # JIT, codec tables, weights
    cpu = {name: [float("inf")] * len(clips) for name in fns}
    found: dict[tuple[str, int], tuple[list[int], int]] = {}
    for _ in range(max(1, repeat)):
        for i, (path, _) in enumerate(clips):
            for name, fn in fns.items():
                found[name, i], _, c = peers.timed(lambda f=fn: f(path))
                cpu[name][i] = min(cpu[name][i], c)
    out = {}
    for name in fns:
        total = ShotScore()
        for i, (_, e) in enumerate(clips):
            total.add(score(e.transitions, found[name, i][0], tol, e.distractors))
        frames = sum(found[name, i][1] for i in range(len(clips)))
        out[name] = {"fps_per_core": frames / sum(cpu[name]), "frames": frames, **total.row()}
    return out
