"""Measure each featurizer and training stage against its physical limit, side by side.

    python jobs/benchmark.py [--quick] [--sizes 640x360,1280x720] [--seconds 60] [--out bench.json]

Renders its own trailers (H.264 + AAC at the given sizes, 24 fps), then reports ratios
measured in this one run on this machine:
  decode      featurizer CPU stages (decode + shots + keyframes + spectrograms + low-level)
              vs PyAV decode of every frame: one file alone (best thread setting), and
              one file per core at once (how the pipeline runs)               target <= 1.5
  backbone    the embedder actor's call vs the bare model forward, same keyframes  >= 0.9
  audio       the pipeline's spectrograms vs one bare librosa STFT (and torch.stft)
  train       LSTM vs CTT-MMC-C seconds per epoch on the same features        >= 3
              Ray Train with 1 vs 2 workers, seconds per epoch
  memory      featurize peak worker RSS for 4N vs N trailers (streaming)       <= 1.2
  end to end  trailers and video hours per hour per core, and the cost of LMTD-9
              (4,007 trailers) and of 100,000 trailers on --cluster-cpus cores
--quick (for CI) uses tiny sizes and skips the Ray Train comparison (a minute per run; the
training path is covered by the tests): it checks that every other measurement runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jobs._common  # noqa: E402,F401  (safe Ray / MLflow environment defaults)

LMTD9_TRAILERS = 4007
LMTD9_MEAN_S = 150.0     # the paper: about 50 three-second audio windows per trailer


def _sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants WxH[,WxH...], got {text!r}")


def machine() -> dict:
    import torch

    from featurize.benchmark import cpu_count
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": cpu_count(), "gpu": gpu, "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__}


def run(a: argparse.Namespace) -> dict:
    from ctt import benchmark as tb
    from ctt.config import load_config
    from featurize import benchmark as fb
    work = Path(a.work)
    res: dict = {"machine": machine(), "args": vars(a), "rows": []}
    cores = res["machine"]["cpus"]

    def row(section, what, measured, reference, ratio, target=None, ok=None, note=""):
        res["rows"].append({"section": section, "what": what, "measured": measured, "reference": reference,
                            "ratio": ratio, "target": target, "ok": ok, "note": note})
        print(f"  {section:<11} {what:<38} ratio {ratio:6.2f}" + (f"  (target {target})" if target else ""), flush=True)

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

    rows = tb.synthetic_rows(a.train_trailers, 2048, 40, 160, seed=0)
    ctt = tb.epoch_time("ctt-c", rows, a.train_epochs)
    lstm = tb.epoch_time("lstm", rows, a.train_epochs)
    row("train", f"{len(rows)} trailers x 2048-d: LSTM/CTT-C s/epoch", f"CTT-C {ctt['s_per_epoch']:.2f} s",
        f"LSTM {lstm['s_per_epoch']:.2f} s", lstm["s_per_epoch"] / ctt["s_per_epoch"], ">= 3",
        lstm["s_per_epoch"] / ctt["s_per_epoch"] >= 3)
    res["train"] = {"ctt-c": ctt, "lstm": lstm}

    if a.ray_epochs:
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        import ray
        store = work / "train_store"
        if not store.exists():
            tb.write_synthetic_store(store, tb.synthetic_rows(a.ray_trailers, 512, 40, 160, seed=1))
        ray.init(address="local", num_cpus=cores, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="ERROR")
        try:
            ray.data.DataContext.get_current().enable_progress_bars = False
            one = tb.ray_train_epoch_time(str(store), 1, a.ray_epochs, str(work / "ray_results"))
            two = tb.ray_train_epoch_time(str(store), 2, a.ray_epochs, str(work / "ray_results"))
        finally:
            ray.shutdown()
        row("train", "Ray Train: 1/2 workers s/epoch", f"2 workers {two['s_per_epoch']:.2f} s",
            f"1 worker {one['s_per_epoch']:.2f} s", one["s_per_epoch"] / two["s_per_epoch"],
            note=f"{cores} cores: the workers share them")
        res["ray_train"] = {"1": one, "2": two}
    else:
        print("  train       Ray Train 1 vs 2 workers: skipped (--ray-epochs 0)", flush=True)

    e2e_cfg = load_config(None, [f"featurize.backbone.name={a.e2e_backbone}", "featurize.backbone.weights=none"]).featurize
    small = fb.featurize_memory(clips, a.n, e2e_cfg, work, cores)
    big = fb.featurize_memory(clips, 4 * a.n, e2e_cfg, work, cores)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that every measurement runs (CI)")
    p.add_argument("--sizes", type=_sizes, default=None, help="trailer sizes, e.g. 640x360,1280x720")
    p.add_argument("--seconds", type=float, default=None, help="length of each benchmark trailer")
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--per-size", type=int, default=1, help="trailers per size")
    p.add_argument("--repeat", type=int, default=None, help="timed repetitions (best is kept)")
    p.add_argument("--backbone", default="resnet152", help="backbone of the backbone-stage comparison")
    p.add_argument("--keyframes", type=int, default=None, help="keyframes in the backbone comparison (0: all)")
    p.add_argument("--e2e-backbone", default="resnet18", help="backbone of the end-to-end and memory runs")
    p.add_argument("--n", type=int, default=None, help="trailers of the small memory run (the big one is 4x); enough for every embedder actor to see full batches")
    p.add_argument("--train-trailers", type=int, default=None)
    p.add_argument("--train-epochs", type=int, default=2)
    p.add_argument("--ray-trailers", type=int, default=None)
    p.add_argument("--ray-epochs", type=int, default=None)
    p.add_argument("--cluster-cpus", type=int, default=256, help="cluster size for the 100k-trailer estimate")
    p.add_argument("--work", default=None, help="folder for trailers and stores (default: a temp folder)")
    p.add_argument("--out", default="benchmark.json", help="JSON results")
    a = p.parse_args(argv)
    q = a.quick
    defaults = {"sizes": [(320, 180)] if q else [(640, 360), (1280, 720)], "seconds": 8 if q else 60,
                "repeat": 1 if q else 2, "keyframes": 16 if q else 64, "n": 1 if q else 8,
                "train_trailers": 32 if q else 512, "ray_trailers": 24 if q else 400, "ray_epochs": 0 if q else 6}
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if q:
        a.backbone = "resnet18"
    tmp = None
    if a.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="ctt_bench_")
        a.work = tmp.name
    t0 = time.time()
    res = run(a)
    res["wall_s"] = time.time() - t0
    text = table(res)
    print("\n" + text)
    Path(a.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"\nwritten: {a.out} ({res['wall_s']:.0f} s)")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
