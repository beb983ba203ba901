"""The benchmark suite of `jobs/benchmark.py`: every stage against its limit, side by side in
one run. The featurizer's stages are measured by `featurize.benchmark`; the training cost
here: CTT-MMC-C vs the LSTM on the same features, and Ray Train with 1 vs 2 workers on
the same store."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ctt.experiment.tracking import reading
from ctt import metrics as M
from ctt import svm
from ctt.config import BaselineConfig, ModelConfig, load_config
from featurize.config import BackboneConfig
from ctt.experiment.distributed.train_driver import run_training
from cluster.session import local_ray
from ctt.evidence import input_attributions
from ctt.models import build_model
from benchmarks.train_speed import epoch_time, prebuilt_batches, synthetic_rows
from benchmarks import featurize_cost as fb
from benchmarks import dedup_cost, real_footage, usage_errors
from benchmarks import shot_cost as sc
from featurize import store
from benchmarks.featurize_cost import cpu_count
from featurize.genres import GENRES


LMTD9_TRAILERS = 4007
LMTD9_MEAN_S = 150.0     # the paper: about 50 three-second audio windows per trailer




def shot_rows(row, det: dict[str, dict[str, Any]], data: str, tag: str) -> None:
    """One benchmark row per shot detector: F1 per group, recall per kind and false boundaries
    per distractor in the note; the ratio is our hsv rule's frames per CPU-second over this
    detector's (over decoding alone for the reference row)."""
    ours = det[sc.HSV_ROW]
    for name, d in det.items():
        if "skipped" in d:
            print(f"  shots       {name}: skipped ({d['skipped']})", flush=True)
            continue
        kinds = ", ".join(f"{k.removeprefix('recall_')} {v:.2f}" for k, v in d.items()
                          if k.startswith("recall_") and v is not None)
        false = ", ".join(f"{k.removeprefix('false_')} {v}/{d['n_' + k.removeprefix('false_')]}" for k, v in d.items()
                          if k.startswith("false_") and k != "false_positives")
        note = f"{data}; recall {kinds}; false boundaries on {false}" if name != sc.DECODE_ROW else data
        if name == sc.DECODE_ROW:
            r = ours["fps_per_core"] / d["fps_per_core"]
            row(f"shots {tag}", "hsv pass / decoding alone: frames per CPU-second", f"{ours['fps_per_core']:.0f} frames/s",
                f"{d['fps_per_core']:.0f} frames/s", r, ">= 0.9", r >= 0.9, note)
            continue
        peer = name not in (sc.HSV_ROW, sc.PAPER_ROW, sc.TRANSNET_ROW)   # the project's own options are not judged
        r = ours["fps_per_core"] / d["fps_per_core"]
        row(f"shots {tag}", f"{name}: F1 cuts / gradual / all",
            f"{d['cut_f1']:.2f} / {d['gradual_f1']:.2f} / {d['all_f1']:.2f}",
            f"{d['fps_per_core']:.0f} frames/s per core", r, ">= 1.5 (ours / this)" if peer else None,
            (r >= 1.5 and ours["all_f1"] >= d["all_f1"]) if peer else None, note)

def svm_grid_cost(n_train: int, dim: int, cfg: BaselineConfig, seed: int = 0) -> dict[str, Any]:
    """The AV baseline's grid on the same synthetic low-level vectors (277-d like the paper's),
    scored by probabilities (libsvm's Platt fits at every point) and by the decision function
    (one fit a point): grid seconds, the chosen points and the test AU(PRC) of each choice."""
    rng = np.random.default_rng(seed)
    n_val, n_test = max(20, n_train // 5), max(40, n_train // 2)
    n = n_train + n_val + n_test
    X = rng.normal(size=(n, dim))
    w = rng.normal(size=(dim, len(GENRES))) * (rng.random((dim, len(GENRES))) < 0.05)
    Y = (X @ w + rng.normal(size=(n, len(GENRES))) * 2 > 1.0).astype(float)
    tr, va, te = slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)
    grid = svm.param_grid(cfg)
    out: dict[str, Any] = {"trailers": [n_train, n_val, n_test], "dim": dim, "grid_points": len(grid)}
    for how in ("probability", "decision"):
        t = time.perf_counter()
        scores = np.stack([svm.val_scores(X[tr], Y[tr], X[va], Y[va], p, cfg.seed, cfg.max_iter, how) for p in grid])
        grid_s = time.perf_counter() - t
        chosen = svm.select(scores)
        (pt,) = svm.fit_predict(X[tr], Y[tr], [grid[i] for i in chosen], [X[te]], cfg.seed, cfg.max_iter)
        out[how] = {"grid_s": grid_s, "chosen": chosen.tolist(),
                    "test_auprc_macro": float(M.auprc(Y[te], pt, "macro"))}
    return out


def evidence_cost(trailers: int, max_t: int, repeat: int = 2) -> dict[str, Any]:
    """Seconds to score a batch of keyframe sequences with CTT-MMC-C, and to attribute every
    genre's logit to its keyframes (one backward pass per genre) on the same batch."""
    rows = synthetic_rows(trailers, 2048, max(3, max_t // 4), max_t, seed=2)
    cfg = ModelConfig(name="ctt-c")
    model = build_model(cfg, 2048).eval()
    (batch,) = prebuilt_batches(rows, cfg, len(rows), torch.device("cpu"))

    def score():
        with torch.no_grad():
            model(batch["x"], batch["lengths"])
    t_score, _ = fb.best_of(score, repeat)
    t_attr, _ = fb.best_of(lambda: input_attributions(model, batch), repeat)
    return {"trailers": trailers, "score_s": t_score, "evidence_s": t_attr}


def driver_plan(work: Path, n: int) -> dict[str, Any]:
    """`jobs/featurize.py --dry-run` on a generated manifest of n rows (S3 paths, labels,
    splits) in a fresh process: the driver's peak RSS and time to plan them."""
    manifest = work / f"driver_manifest_{n}.csv"
    if not manifest.exists():
        ids = [f"t{i:07d}" for i in range(n)]
        pd.DataFrame({"trailer_id": ids, "path": [f"s3://trailers/videos/{t}.mp4" for t in ids],
                      "genres": ["action|drama"] * n, "split": (["train", "val", "test"] * n)[:n]}).to_csv(manifest, index=False)
    job = Path(__file__).resolve().parents[1] / "jobs" / "featurize.py"
    out = subprocess.run([sys.executable, str(job), "--input", str(manifest), "--output", str(work / "driver_store"),
                          "--dry-run"], capture_output=True, text=True, check=True).stdout
    plan = json.loads(out[out.index("{"):])
    return {"rows": n, "to_do": plan["to_do"], "blocks": plan["blocks"], "peak_rss_mb": plan["driver_peak_rss_mb"],
            "wall_s": plan["wall_s"]}


def write_synthetic_store(path: Path, rows: list[dict]) -> None:
    """A feature store of random keyframe features (no video, one keyframe a second): enough
    for train.py."""
    dim = rows[0]["frames"].shape[1]
    full = [store.trailer_row(dim, **r, frame_times=np.arange(len(r["frames"]), dtype=np.float32),
                              shot_starts=np.arange(len(r["frames"]), dtype=np.int32),
                              duration_s=float(len(r["frames"])), n_frames=len(r["frames"]), fps=1.0)
            for r in rows]
    store.claim(str(path), {"feature_dim": dim, "synthetic": True})
    for i in range(0, len(full), 64):
        store.write_atomic(store.features_table(full[i:i + 64], dim), str(path))


def ray_train_epoch_time(store_path: str, workers: int, epochs: int, storage: str) -> dict[str, Any]:
    """Seconds per epoch of `run_training` (Ray Train, DDP) with this many workers: from the
    timestamps of the per-epoch metrics, so worker start-up is not counted."""
    cfg = load_config(None, [f"resources.num_workers={workers}", f"train.max_epochs={epochs}",
                             f"train.patience={epochs}", f"train.checkpoint_every={epochs}",
                             f"tracking.storage_path={storage}", "tracking.experiment=benchmark"])
    s = run_training(store_path, cfg)
    stamps = sorted(ts for _, ts, _ in reading.metric_history(s["run_id"], "train_loss"))
    per_epoch = (stamps[-1] - stamps[0]) / 1000 / max(1, len(stamps) - 1)
    return {"workers": workers, "epochs": s["epochs_trained"], "fit_s": s["fit_s"], "s_per_epoch": per_epoch}


def machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": cpu_count(), "gpu": gpu, "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__}


def e2e_backbone(a: argparse.Namespace) -> BackboneConfig:
    return BackboneConfig(name=a.e2e_backbone, weights="none")


def _results(a: argparse.Namespace) -> tuple[dict, Callable[..., None]]:
    """The results dict and the function that adds a row to it (and prints it)."""
    res: dict = {"machine": machine(), "args": vars(a), "rows": []}

    def row(section, what, measured, reference, ratio, target=None, ok=None, note=""):
        res["rows"].append({"section": section, "what": what, "measured": measured, "reference": reference,
                            "ratio": ratio, "target": target, "ok": ok, "note": note})
        print(f"  {section:<11} {what:<38} ratio {ratio:6.2f}" + (f"  (target {target})" if target else ""), flush=True)
    return res, row


def run_shots(a: argparse.Namespace) -> dict:
    """The shot detectors alone (`jobs/benchmark.py --suite shots`): on real footage, then on
    rendered trailers."""
    res, row = _results(a)
    cfg = load_config(None, ["featurize.backbone.weights=none"]).featurize
    shot_section(a, Path(a.work), cfg, row, res)
    return res


def shot_section(a: argparse.Namespace, work: Path, cfg, row, res: dict) -> list:
    """Every detector on videos edited from real footage, then on rendered trailers; returns
    the rendered clips (the later rows reuse them)."""
    real_size, real_n, changes = ((320, 240), 1, 6) if a.quick else (real_footage.SIZE, 3, 24)
    clips_real, missing = real_footage.real_clips(work / "real_clips", real_n, n_changes=changes, size=real_size)
    if missing:
        print(f"  shots       real footage: skipped ({missing})", flush=True)
    else:
        det_real = sc.detector_rows(clips_real, cfg, tol=2, repeat=a.repeat, warm_up=not a.quick)
        shot_rows(row, det_real, f"real footage, {real_n} edited videos {real_size[0]}x{real_size[1]} at "
                                 f"{real_footage.FPS} fps (benchmarks/real_footage.py)", "real")
        res["shots_real"] = det_real
    shot_size, shot_s, shot_n = ((160, 96), 5.0, 1) if a.quick else ((640, 360), 60.0, 4)
    clips_sh = sc.shot_clips(work / "shot_clips", shot_n, shot_size, shot_s)
    det = sc.detector_rows(clips_sh, cfg, repeat=a.repeat, warm_up=not a.quick)
    shot_rows(row, det, f"rendered: {shot_n} trailers {shot_size[0]}x{shot_size[1]} {shot_s:.0f} s, "
                        "30% of changes gradual", "rendered")
    res["shots"] = det
    return clips_sh


def run(a: argparse.Namespace) -> dict:
    """Every measurement of `jobs/benchmark.py` (its arguments in `a`), rows in one dict."""
    work = Path(a.work)
    res, row = _results(a)
    cores = res["machine"]["cpus"]

    print(f"rendering benchmark trailers into {work / 'clips'} ...", flush=True)
    t = time.time()
    clips = fb.render_clips(work / "clips", a.sizes, a.seconds, fps=a.fps, per_size=a.per_size)
    print(f"  {len(clips)} trailers ready ({time.time() - t:.0f} s)", flush=True)

    cfg = load_config(None, [f"featurize.backbone.name={a.backbone}", "featurize.backbone.weights=none"]).featurize
    keyframes, audio_y = None, None
    fb.featurize_cpu(clips[0].path, cfg)                      # warm-up: librosa/numba JIT, FFT plans
    solo = dataclasses.replace(cfg, decode_threads=cores)      # one file alone: the decoder may use every core
    res["decode"] = []
    for c in clips:
        t_dec, how = fb.best_decode(c.path, a.repeat)
        t_feat, out = fb.best_of(lambda: fb.featurize_cpu(c.path, solo), a.repeat)
        n_frames = out["n_frames"]
        row("decode", f"{c.width}x{c.height} {c.seconds:.0f}s alone: featurize/decode",
            f"{n_frames / t_feat:.0f} frames/s", f"{n_frames / t_dec:.0f} frames/s decode-only ({how})",
            t_feat / t_dec, "<= 1.5", t_feat / t_dec <= 1.5)
        busy = fb.every_core_busy(c.path, cfg, cores, how if how != "FRAME" else "SLICE", a.repeat + 2)
        r = busy["featurize_s"] / busy["decode_s"]
        row("decode", f"{c.width}x{c.height} {c.seconds:.0f}s, {cores} at once: featurize/decode",
            f"{cores * n_frames / busy['featurize_s']:.0f} frames/s", f"{cores * n_frames / busy['decode_s']:.0f} "
            "frames/s decode-only (1 thread each)", r, "<= 1.5", r <= 1.5,
            "one file per core, as the pipeline runs")
        res["decode"].append({"clip": c.path, "frames": n_frames, "alone_decode_s": t_dec, "alone_thread_type": how,
                              "alone_featurize_s": t_feat} | {f"busy_{k}": v for k, v in busy.items()})
        if c is clips[0] and not a.quick:  # the smallest size, where the audio part weighs most
            lean = fb.every_core_busy(c.path, dataclasses.replace(cfg, av=False), cores,
                                      how if how != "FRAME" else "SLICE", a.repeat + 2)
            r = lean["featurize_s"] / lean["decode_s"]
            row("decode", f"{c.width}x{c.height} {c.seconds:.0f}s, {cores} at once, featurize.av=false",
                f"{cores * n_frames / lean['featurize_s']:.0f} frames/s", f"{cores * n_frames / lean['decode_s']:.0f} "
                "frames/s decode-only (1 thread each)", r, "<= 1.5", r <= 1.5,
                "a store without the AV baseline's audio descriptors")
            res["decode"][-1]["busy_av_false"] = lean
        if keyframes is None or len(out["keyframes"]) > len(keyframes):
            keyframes = out["keyframes"]
        audio_y = audio_y if audio_y is not None else fb.decode_audio(c.path)

    kf = keyframes[: a.keyframes] if a.keyframes else keyframes
    bb = fb.backbone_stage(kf, cfg.backbone, a.repeat)
    row("backbone", f"{a.backbone} on {bb['device']}: pipeline/bare throughput",
        f"{bb['pipeline_kf_per_s']:.1f} keyframes/s", f"{bb['bare_kf_per_s']:.1f} keyframes/s",
        bb["pipeline_kf_per_s"] / bb["bare_kf_per_s"], ">= 0.9", bb["pipeline_kf_per_s"] / bb["bare_kf_per_s"] >= 0.9,
        f"bf16={bb['bf16']} channels_last={bb['channels_last']}")

    sp = fb.spectrogram_stage(audio_y, a.repeat + 1)
    row("audio", f"{sp['windows']} windows: pipeline/bare librosa time", f"{sp['pipeline_s'] * 1e3:.1f} ms",
        f"{sp['bare_librosa_s'] * 1e3:.1f} ms", sp["pipeline_s"] / sp["bare_librosa_s"], "<= 1.1",
        sp["pipeline_s"] / sp["bare_librosa_s"] <= 1.1)
    if "torch_stft_s" in sp:
        row("audio", f"torch.stft ({sp['torch_device']}) / librosa time", f"{sp['torch_stft_s'] * 1e3:.1f} ms",
            f"{sp['bare_librosa_s'] * 1e3:.1f} ms", sp["torch_stft_s"] / sp["bare_librosa_s"])

    rows = synthetic_rows(a.train_trailers, 2048, 40, 160, seed=0)
    ctt = epoch_time("ctt-c", rows, a.train_epochs)
    lstm = epoch_time("lstm", rows, a.train_epochs)
    row("train", f"{len(rows)} trailers x 2048-d: LSTM/CTT-C s/epoch", f"CTT-C {ctt['s_per_epoch']:.2f} s",
        f"LSTM {lstm['s_per_epoch']:.2f} s", lstm["s_per_epoch"] / ctt["s_per_epoch"], ">= 3",
        lstm["s_per_epoch"] / ctt["s_per_epoch"] >= 3)
    res["train"] = {"ctt-c": ctt, "lstm": lstm}

    clips_sh = shot_section(a, work, cfg, row, res)
    lc = sc.learned_shot_cost(clips_sh, cfg)
    if "skipped" in lc:
        print(f"  shots       transnetv2 cost: skipped ({lc['skipped']})", flush=True)
    else:
        row("shots", "decode pass, shots.detector=transnetv2 / hsv: frames per CPU-second",
            f"{lc['transnetv2_decode_fps']:.0f} frames/s", f"{lc['hsv_decode_fps']:.0f} frames/s",
            lc["transnetv2_decode_fps"] / lc["hsv_decode_fps"],
            note=f"every frame also at 48x27 ({lc['small_frames_mb']:.1f} MB) and {lc['candidates']} keyframe "
                 f"candidates ({lc['candidates_mb']:.0f} MB) for the last {lc['frames']}-frame trailer")
        row("shots", f"TransNetV2 network alone on {lc['device']}: frames/s vs the hsv decode pass",
            f"{lc['network_fps']:.0f} frames/s", f"{lc['hsv_decode_fps']:.0f} frames/s per core",
            lc["network_fps"] / lc["hsv_decode_fps"], note=f"{lc['network_fps_per_core']:.0f} frames per CPU-second")
    res["shot_cost"] = lc

    diy = fb.diy_vs_project([c[0] for c in clips_sh], dataclasses.replace(cfg, backbone=e2e_backbone(a)))
    if "skipped" in diy:
        print(f"  diy         skipped ({diy['skipped']})", flush=True)
    else:
        kf = [sum(s["frames"][0] for s in diy[k]["shapes"]) for k in ("project", "diy")]
        row("diy", f"featurize ({diy['backbone']}) vs do-it-yourself, trailers/h per core",
            f"{diy['project']['trailers_per_hour_per_core']:.0f} project",
            f"{diy['diy']['trailers_per_hour_per_core']:.0f} PySceneDetect + PyAV seeks + librosa",
            diy["project"]["trailers_per_hour_per_core"] / diy["diy"]["trailers_per_hour_per_core"],
            note=f"same output shapes: {diy['same_shapes']}; keyframes {kf[0]} vs {kf[1]} (each its own shots); "
                 "the project also computes the low-level descriptors")
    res["diy"] = diy

    quick_grid = {"C": [0.1, 10.0], "gamma": [0.1]} if a.quick else {}
    sv = svm_grid_cost(60 if a.quick else 400, 277, BaselineConfig(**quick_grid))
    same = sv["decision"]["chosen"] == sv["probability"]["chosen"]
    row("svm", f"AV grid ({sv['grid_points']} points x 9 genres, {sv['trailers'][0]} train): probability/decision s",
        f"{sv['decision']['grid_s']:.1f} s decision_function", f"{sv['probability']['grid_s']:.1f} s Platt at every point",
        sv["probability"]["grid_s"] / sv["decision"]["grid_s"],
        note=("same points chosen" if same else
              f"{sum(x != y for x, y in zip(sv['decision']['chosen'], sv['probability']['chosen']))} of 9 genres chose "
              f"another point") + f"; test macro AU(PRC) {sv['decision']['test_auprc_macro']:.3f} vs "
                                  f"{sv['probability']['test_auprc_macro']:.3f}")
    res["svm"] = sv

    ev = evidence_cost(8 if a.quick else 64, 24 if a.quick else 120, a.repeat)
    row("options", f"evidence for 9 genres / scoring, CTT-MMC-C, {ev['trailers']} trailers",
        f"{ev['evidence_s'] * 1e3:.0f} ms", f"{ev['score_s'] * 1e3:.0f} ms", ev["evidence_s"] / ev["score_s"],
        note="one backward pass per genre; predict computes it for predicted genres only")
    res["evidence"] = ev
    names = (["resnet18", "mobilenet_v3_small"] if a.quick else
             ["resnet152", "resnet50", "convnext_tiny", "vit_b_16", "timm:vit_small_patch16_224",
              "open_clip:ViT-B-32/openai"])
    bb_costs = fb.backbone_costs(names, 4 if a.quick else 32, a.repeat)
    base = bb_costs[names[0]]
    for name, b in bb_costs.items():
        if "skipped" in b:
            print(f"  options     {name}: skipped ({b['skipped']})", flush=True)
            continue
        row("options", f"backbone {name} ({b['dim']}-d, {b['params_m']:.0f}M params, {b['crop']} px): "
            f"keyframes/s vs {names[0]}", f"{b['kf_per_s']:.1f} keyframes/s", f"{base['kf_per_s']:.1f} keyframes/s",
            b["kf_per_s"] / base["kf_per_s"])
    res["backbones"] = bb_costs

    small_n, big_n = (1_000, 10_000) if a.quick else (10_000, 100_000)
    small, big = driver_plan(work, small_n), driver_plan(work, big_n)
    per_row_kb = (big["peak_rss_mb"] - small["peak_rss_mb"]) * 1024 / (big_n - small_n)
    row("driver", f"featurize --dry-run peak RSS: {big_n:,} vs {small_n:,} manifest rows",
        f"{big['peak_rss_mb']:.0f} MB", f"{small['peak_rss_mb']:.0f} MB", big["peak_rss_mb"] / small["peak_rss_mb"],
        "<= 1.2", big["peak_rss_mb"] / small["peak_rss_mb"] <= 1.2,
        f"{per_row_kb:.2f} KB per row beyond the imports; {big['blocks']} decode blocks; plan {big['wall_s']:.1f} s")
    res["driver"] = {"small": small, "big": big, "kb_per_row": per_row_kb}

    growth = dedup_cost.dedup_rows(base=200 if a.quick else 1000)
    one, last = growth[0], growth[-1]
    row("dedup", f"near-duplicate search: {last['trailers']:,} vs {one['trailers']:,} trailers",
        f"{last['wall_s']:.1f} s", f"{one['wall_s']:.2f} s", last["time_vs_1x"],
        f"<= {last['scale'] ** 1.5:.0f} (n^1.5; all pairs: {last['scale'] ** 2})", last["time_vs_1x"] <= last["scale"] ** 1.5,
        "synthetic signatures, HNSW: " + "; ".join(
            f"{r['scale']}x {r['trailers']:,} trailers {r['wall_s']:.2f} s, {r['pairs_scored_per_s']:.0f} pairs/s, "
            f"{r['signature_mb']:.1f} MB signatures, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"P {r['precision']:.3f} R {r['recall']:.3f}" for r in growth))
    res["dedup"] = growth
    if not a.quick:                          # featurizes 15 real-footage videos (about 40 s)
        with local_ray(cores):
            real = dedup_cost.real_footage_dedup(work)
        if "skipped" in real:
            print(f"  dedup       real footage: skipped ({real['skipped']})", flush=True)
        else:
            row("dedup", f"near-duplicates on real footage: {real['trailers']} cuts of {real['films']} films",
                f"P {real['pair_precision']:.2f} R {real['pair_recall']:.2f}", "pairs of cuts of one film",
                real["pair_recall"], ">= 0.95 (recall)", real["pair_recall"] >= 0.95,
                f"benchmarks/real_recuts.py, {real['backbone']}: {real['films_in_one_group']} of {real['films']} "
                f"films in one group, {real['groups_joining_films']} groups joining films")
        res["dedup_real"] = real

    (work / "mistakes").mkdir(parents=True, exist_ok=True)
    mistakes = usage_errors.time_mistakes(work / "mistakes")
    slowest = max(m["seconds"] for m in mistakes)
    right = all(m["code"] == 2 and m["said"] for m in mistakes)
    row("usage", f"{len(mistakes)} input mistakes (jobs/*.py): the slowest exit 2", f"{slowest:.2f} s", "2 s",
        slowest / 2.0, "<= 1", slowest <= 2.0 and right,
        "one line each, before Ray or MLflow start: " + "; ".join(f"{m['job']} {m['seconds']:.2f} s" for m in mistakes))
    res["usage"] = mistakes

    if a.ray_epochs:
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        store = work / "train_store"
        if not store.exists():
            write_synthetic_store(store, synthetic_rows(a.ray_trailers, 512, 40, 160, seed=1))
        with local_ray(cores):
            one = ray_train_epoch_time(str(store), 1, a.ray_epochs, str(work / "ray_results"))
            two = ray_train_epoch_time(str(store), 2, a.ray_epochs, str(work / "ray_results"))
        row("train", "Ray Train: 1/2 workers s/epoch", f"2 workers {two['s_per_epoch']:.2f} s",
            f"1 worker {one['s_per_epoch']:.2f} s", one["s_per_epoch"] / two["s_per_epoch"],
            note=f"{cores} cores: the workers share them")
        res["ray_train"] = {"1": one, "2": two}
    else:
        print("  train       Ray Train 1 vs 2 workers: skipped (--ray-epochs 0)", flush=True)

    e2e_cfg = dataclasses.replace(cfg, backbone=e2e_backbone(a))
    with local_ray(cores):                  # a fresh instance per run: each peak is its own
        small = fb.featurize_memory(clips, a.n, e2e_cfg, work)
    with local_ray(cores):
        big = fb.featurize_memory(clips, 4 * a.n, e2e_cfg, work)
    row("memory", f"peak worker RSS: {4 * a.n} vs {a.n} trailers", f"{big['peak_worker_rss_mb']:.0f} MB",
        f"{small['peak_worker_rss_mb']:.0f} MB", big["peak_worker_rss_mb"] / small["peak_worker_rss_mb"],
        "<= 1.2", big["peak_worker_rss_mb"] / small["peak_worker_rss_mb"] <= 1.2)
    res["memory"] = {"n": small, "4n": big}

    per_core_h = big["trailers"] / (big["wall_s"] / 3600) / cores
    video_per_core = big["video_s"] / big["wall_s"] / cores            # video seconds per core-second
    lmtd_core_h = LMTD9_TRAILERS * LMTD9_MEAN_S / video_per_core / 3600
    big_core_h = 100_000 * LMTD9_MEAN_S / video_per_core / 3600
    res["end_to_end"] = {"backbone": a.e2e_backbone, "trailers_per_hour_per_core": per_core_h,
                         "video_hours_per_hour_per_core": video_per_core,
                         "lmtd9_core_hours": lmtd_core_h, "lmtd9_hours_on_this_machine": lmtd_core_h / cores,
                         "100k_core_hours": big_core_h, "cluster_cpus": a.cluster_cpus,
                         "100k_hours_on_cluster": big_core_h / a.cluster_cpus}
    row("end2end", f"{a.e2e_backbone}: video h per hour per core", f"{per_core_h:.0f} trailers/h/core",
        f"{cores} cores", video_per_core,
        note=f"LMTD-9 {lmtd_core_h:.1f} core-h; 100k trailers {big_core_h / a.cluster_cpus:.1f} h on {a.cluster_cpus} CPUs")
    return res


def table(res: dict) -> str:
    m = res["machine"]
    lines = [f"machine: {m['cpus']} CPUs, GPU: {m['gpu'] or 'none'}, {m['platform']}, torch {m['torch']}", "",
             "| section | measurement | measured | reference | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        ok = "" if r["ok"] is None else ("yes" if r["ok"] else "**no**")
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['section']} | {r['what']}{note} | {r['measured']} | {r['reference']} | "
                     f"{r['ratio']:.2f} | {r['target'] or ''} | {ok} |")
    return "\n".join(lines)
