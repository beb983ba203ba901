"""The GPU suite of `jobs/benchmark.py --suite gpu`: the claims that need an accelerator,
each measured side by side in one run on one device (on CPU it runs too, smaller, so
`--quick` is tested everywhere).

  embedder   ResNet-152 as the actor runs it (bf16 autocast, channels_last, host copies)
             vs the bare fp32 forward and the bare bf16 forward on device tensors, and the
             achieved FLOP rate (FLOPs per image counted) vs the device's measured matmul rate
  train      CTT-MMC-C vs LSTM seconds per epoch at LMTD-9 size (2,861 synthetic sequences
             of up to 240 x 2048), batches prebuilt on the device
  stft       the spectrograms of many trailers: torch.stft on the device vs the decode
             tasks' NumPy path and torch.stft on the CPU
  shots      TransNetV2 (featurize.shots.detector=transnetv2) as the embedder actor runs it
             (windows batched) on the device vs on the CPU, and vs the package's own
             `predict_frames` (one window per forward pass) on the device; skipped where the
             `transnet` extra is not installed
  featurize  the whole featurize job on one local Ray instance (GPU embedder actors, one decode
             task per CPU): spectrograms in the decode tasks vs on the actors, trailers per
             hour and GPU utilisation; needs Ray and PyAV, reported as skipped without them

Ray, PyAV and librosa are imported only by the featurize section, so the first three run
on a machine that has PyTorch alone.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.train_speed import LMTD9_MAX_T, LMTD9_TRAIN, epoch_time, synthetic_rows
from featurize import audio, shot_detectors, transnet
from featurize.backbone import FrameEmbedder, crop_size, load_backbone
from featurize.config import BackboneConfig


SECTIONS = ("embedder", "train", "stft", "shots", "featurize")


@dataclass
class GpuSuiteArgs:
    """Sizes of one run; `quick()` is the CPU smoke size of the tests."""
    backbone: str = "resnet152"
    keyframes: int = 2048
    embed_batches: tuple[int, ...] = (64, 128, 256, 512)   # the actor's call at each featurize.backbone.batch_size
    train_trailers: int = LMTD9_TRAIN
    train_max_t: int = LMTD9_MAX_T
    train_epochs: int = 2
    stft_trailers: int = 32
    stft_seconds: float = 150.0
    shot_frames: int = 2880       # a 2-minute trailer at 24 fps
    e2e_trailers: int = 128
    e2e_size: tuple[int, int] = (640, 360)
    e2e_seconds: float = 60.0
    e2e_backbone: str = "resnet152"
    cpus: int = 0                 # decode CPUs of the featurize run (0: every core)
    repeat: int = 3
    warmup: bool = True           # a featurize run on a few trailers before each timed one
    work: str = ""
    skip: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls, **kw) -> "GpuSuiteArgs":
        return cls(backbone="resnet18", keyframes=16, embed_batches=(8, 16), train_trailers=48, train_max_t=48, train_epochs=1,
                   stft_trailers=2, stft_seconds=9.0, shot_frames=40, e2e_trailers=2, e2e_size=(160, 96), e2e_seconds=4.0,
                   e2e_backbone="resnet18", repeat=1, warmup=False, **kw)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def best_time(fn: Callable[[], Any], dev: torch.device, repeat: int) -> float:
    """The fastest of `repeat` timed calls after one warm-up, the device drained each time."""
    fn()
    sync(dev)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(dev)
        best = min(best, time.perf_counter() - t)
    return best


def matmul_rate(dev: torch.device, repeat: int = 3) -> dict[str, Any]:
    """The device's arithmetic ceiling as measured here: a large square matrix product in the
    embedder's compute type (bf16 on GPU, fp32 on CPU), FLOP/s."""
    n, dtype = (8192, torch.bfloat16) if dev.type == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    t = best_time(lambda: a @ b, dev, repeat)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "flops_per_s": 2 * n**3 / t}


def flops_per_image(model: torch.nn.Module, size: int) -> float:
    """FLOPs of one forward pass at size x size, counted by PyTorch's operator counter
    (convolutions and matrix products, 2 per multiply-add)."""
    x = torch.zeros(1, 3, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return float(counter.get_total_flops())


def embedder(a: GpuSuiteArgs, dev: torch.device) -> dict[str, Any]:
    """Keyframes per second: the actor's call (uint8 host arrays in, float32 host features out)
    vs the bare forward on normalised device tensors, in fp32 and in the actor's bf16 +
    channels_last; and the FLOP rate the actor reaches against the matmul ceiling."""
    cfg = BackboneConfig(name=a.backbone, weights="none")
    rng = np.random.default_rng(0)
    size = crop_size(cfg)
    images = rng.integers(0, 256, (a.keyframes, size, size, 3), dtype=np.uint8)
    emb = FrameEmbedder(cfg, str(dev))
    kf = a.keyframes
    t_actor = best_time(lambda: emb.embed(images), dev, a.repeat)

    x = torch.from_numpy(images).to(dev).permute(0, 3, 1, 2).float()
    x = ((x - emb.mean) / emb.std).contiguous()
    chunks = list(torch.split(x, cfg.batch_size))
    fp32 = load_backbone(cfg).to(dev)

    @torch.inference_mode()
    def bare_fp32():
        for c in chunks:
            fp32(c)

    @torch.inference_mode()
    def bare_fast():
        for c in chunks:
            emb.forward(c)
    t_fp32 = best_time(bare_fp32, dev, a.repeat)
    t_fast = best_time(bare_fast, dev, a.repeat)
    del x, chunks, fp32
    by_batch = {}
    for b in a.embed_batches:                 # the actor's call at other batch sizes, same keyframes
        other = FrameEmbedder(dataclasses.replace(cfg, batch_size=b), str(dev))
        by_batch[b] = kf / best_time(lambda: other.embed(images), dev, a.repeat)
        del other
    flops = flops_per_image(load_backbone(cfg), size)
    peak = matmul_rate(dev, a.repeat)
    return {"backbone": a.backbone, "keyframes": kf, "batch_size": cfg.batch_size, "device": str(dev),
            "bf16": emb.gpu and cfg.bf16, "channels_last": emb.gpu and cfg.channels_last,
            "actor_kf_per_s": kf / t_actor, "bare_fp32_kf_per_s": kf / t_fp32, "bare_bf16_kf_per_s": kf / t_fast,
            "gflop_per_image": flops / 1e9, "actor_tflop_per_s": flops * kf / t_actor / 1e12,
            "matmul": peak, "matmul_tflop_per_s": peak["flops_per_s"] / 1e12,
            "actor_kf_per_s_by_batch": by_batch}


def train(a: GpuSuiteArgs, dev: torch.device) -> dict[str, Any]:
    """CTT-MMC-C vs the LSTM on the same sequences (LMTD-9's train split size by default)."""
    rows = synthetic_rows(a.train_trailers, 2048, max(3, a.train_max_t // 6), a.train_max_t, seed=0)
    out = {m: epoch_time(m, rows, a.train_epochs, device=dev) for m in ("ctt-c", "lstm")}
    del rows
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return out


def stft(a: GpuSuiteArgs, dev: torch.device) -> dict[str, Any]:
    """Spectrograms of `stft_trailers` trailers of `stft_seconds` each, trailer by trailer as the
    pipeline makes them: NumPy (the decode tasks), torch.stft on CPU, torch.stft on the device
    (host audio in, device spectrograms out, as an actor holds them before the float16 copy)."""
    rng = np.random.default_rng(0)
    tracks = [rng.standard_normal(int(a.stft_seconds * audio.SAMPLE_RATE), dtype=np.float32) * 0.1
              for _ in range(a.stft_trailers)]
    cpu = torch.device("cpu")

    def numpy_path():
        for y in tracks:
            audio.spectrograms(y)

    def torch_on(d: torch.device):
        def run():
            for y in tracks:
                audio.spectrograms_torch(y, str(d))
        return run
    out = {"trailers": a.stft_trailers, "seconds": a.stft_seconds,
           "windows": a.stft_trailers * len(audio.windows(tracks[0])[0]), "device": str(dev),
           "numpy_s": best_time(numpy_path, cpu, a.repeat),
           "torch_cpu_s": best_time(torch_on(cpu), cpu, a.repeat)}
    out["torch_device_s"] = best_time(torch_on(dev), dev, a.repeat) if dev.type != "cpu" else out["torch_cpu_s"]
    S_np, _ = audio.spectrograms(tracks[0])
    S_dev, _ = audio.spectrograms_torch(tracks[0], str(dev))
    out["max_abs_diff"] = float(np.abs(S_dev.cpu().numpy() - S_np).max())
    return out


def shots(a: GpuSuiteArgs, dev: torch.device) -> dict[str, Any]:
    """TransNetV2 transition probabilities for one trailer of `shot_frames` small frames."""
    missing = shot_detectors.DETECTORS["transnetv2"].available()
    if missing:
        return {"skipped": missing}
    frames = np.random.default_rng(0).integers(0, 256, (a.shot_frames, transnet.HEIGHT, transnet.WIDTH, 3), np.uint8)
    cpu = torch.device("cpu")
    on_dev, on_cpu = transnet.TransNetV2Detector(str(dev)), transnet.TransNetV2Detector("cpu")
    x = torch.from_numpy(frames).to(dev)
    out = {"frames": a.shot_frames, "device": str(dev),
           "batched_device_s": best_time(lambda: on_dev.probabilities(frames), dev, a.repeat),
           "batched_cpu_s": best_time(lambda: on_cpu.probabilities(frames), cpu, a.repeat),
           "package_device_s": best_time(lambda: on_dev.model.predict_frames(x, quiet=True), dev, a.repeat)}
    theirs, _ = on_dev.model.predict_frames(x, quiet=True)
    out["max_abs_diff"] = float(np.abs(on_dev.probabilities(frames) - theirs.cpu().numpy()).max())
    return out


class GpuUtilisation:
    """Mean and peak GPU utilisation (NVML, through torch) sampled while the block runs; None
    on a machine without a GPU or without NVML."""

    def __init__(self, interval: float = 0.2):
        self.samples: list[float] = []
        self.interval, self._stop = interval, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(float(torch.cuda.utilization(0)))
            except Exception:
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        if torch.cuda.is_available():
            self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._t.is_alive():
            self._t.join()

    def summary(self) -> dict[str, float | None]:
        s = self.samples
        return {"gpu_util_mean": float(np.mean(s)) if s else None, "gpu_util_max": float(max(s)) if s else None}


def featurize(a: GpuSuiteArgs, work: Path) -> dict[str, Any]:
    """The featurize job end to end, spectrograms in the decode tasks and then on the actors,
    on the same rendered trailers and a fresh local Ray instance each."""
    missing = [m for m in ("ray", "av", "librosa") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"needs Ray, PyAV and librosa ({', '.join(missing)} not installed)"}
    # lazy: Ray, PyAV and librosa come in here, so the other sections run where only PyTorch is
    import pandas as pd
    from ctt.config import load_config
    from benchmarks.featurize_cost import cpu_count, render_clips
    from cluster.session import local_ray
    from featurize.pipeline import run_featurize

    cpus = a.cpus or cpu_count()
    w, h = a.e2e_size
    t = time.perf_counter()
    clips = render_clips(work / "clips", [(w, h)], a.e2e_seconds, per_size=min(a.e2e_trailers, 8))
    render_s = time.perf_counter() - t

    def manifest(name: str, n: int) -> Path:
        path = work / f"{name}.csv"
        pd.DataFrame([{"trailer_id": f"{name}{i:05d}", "path": clips[i % len(clips)].path, "genres": "drama",
                       "split": "train"} for i in range(n)]).to_csv(path, index=False)
        return path
    out: dict[str, Any] = {"trailers": a.e2e_trailers, "size": f"{w}x{h}", "seconds": a.e2e_seconds,
                           "cpus": cpus, "backbone": a.e2e_backbone, "render_s": render_s, "runs": {}}
    with local_ray(cpus):                      # one instance: each mode warms up before it is timed
        for where in ("decode", "actor"):
            cfg = load_config(None, [f"featurize.backbone.name={a.e2e_backbone}", "featurize.backbone.weights=none",
                                     f"featurize.spectrograms_on={where}"]).featurize
            if a.warmup:                      # worker processes, JIT caches, the backbone's first call
                run_featurize(str(manifest(f"warm_{where}", min(cpus, 4))), str(work / f"warm_{where}"), cfg)
            with GpuUtilisation() as util:
                t = time.perf_counter()
                s = run_featurize(str(manifest(f"e2e_{where}", a.e2e_trailers)), str(work / f"e2e_{where}"), cfg)
                wall = time.perf_counter() - t
            if s["failed"] or s["done"] != a.e2e_trailers:
                raise RuntimeError(f"featurize ({where}) did {s['done']} of {a.e2e_trailers}: {s['failed_by_reason']}")
            out["runs"][where] = {"wall_s": wall, "trailers_per_hour": a.e2e_trailers / wall * 3600,
                                  "video_hours_per_hour": s["video_hours"] * 3600 / wall,
                                  "gpu": torch.cuda.is_available()} | util.summary()
    return out


def run(a: GpuSuiteArgs, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every section in turn (those not in `a.skip`); each section's dict under its name."""
    dev = device()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
                           "cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__}
    steps = {"embedder": lambda: embedder(a, dev), "train": lambda: train(a, dev),
             "stft": lambda: stft(a, dev), "shots": lambda: shots(a, dev), "featurize": lambda: featurize(a, work)}
    assert tuple(steps) == SECTIONS
    for name, fn in steps.items():
        if name in a.skip:
            continue
        t = time.perf_counter()
        log(f"gpu suite: {name} ...")
        try:
            res[name] = fn()
        except Exception as e:          # one broken section must not lose the others' numbers
            res[name] = {"error": f"{type(e).__name__}: {e}"}
            log(f"gpu suite: {name} FAILED: {res[name]['error']}")
        res[name]["section_s"] = time.perf_counter() - t
        log(f"gpu suite: {name} done ({res[name]['section_s']:.0f} s)")
    return res


def table(res: dict[str, Any]) -> str:
    """The suite's results as one Markdown table (ratio: how many times faster the first)."""
    lines = [f"device: {res['device']}, {res['cpus']} CPUs, torch {res['torch']}", "",
             "| section | measurement | measured | reference | ratio |", "|---|---|---|---|---|"]

    def row(section, what, measured, reference, ratio):
        lines.append(f"| {section} | {what} | {measured} | {reference} | {ratio:.2f} |")
    for name in SECTIONS:
        if "error" in res.get(name, {}):
            lines.append(f"| {name} | FAILED: {res[name]['error']} | | | |")
    if "bare_fp32_kf_per_s" in res.get("embedder", {}):
        e = res["embedder"]
        what = f"{e['backbone']} {e['keyframes']} keyframes, batch {e['batch_size']}"
        row("embedder", f"{what}: actor (bf16={e['bf16']}, channels_last={e['channels_last']}) / bare fp32",
            f"{e['actor_kf_per_s']:.0f} kf/s", f"{e['bare_fp32_kf_per_s']:.0f} kf/s",
            e["actor_kf_per_s"] / e["bare_fp32_kf_per_s"])
        row("embedder", f"{what}: actor / bare forward in the same precision (host copies' cost)",
            f"{e['actor_kf_per_s']:.0f} kf/s", f"{e['bare_bf16_kf_per_s']:.0f} kf/s",
            e["actor_kf_per_s"] / e["bare_bf16_kf_per_s"])
        row("embedder", f"actor FLOP rate ({e['gflop_per_image']:.1f} GFLOP/image) / {e['matmul']['dtype']} "
            f"{e['matmul']['n']}^3 matmul", f"{e['actor_tflop_per_s']:.1f} TFLOP/s",
            f"{e['matmul_tflop_per_s']:.1f} TFLOP/s", e["actor_tflop_per_s"] / e["matmul_tflop_per_s"])
        by = {int(k): v for k, v in e.get("actor_kf_per_s_by_batch", {}).items()}
        for b in sorted(by):
            if b != e["batch_size"]:
                row("embedder", f"actor at featurize.backbone.batch_size={b} / at {e['batch_size']}",
                    f"{by[b]:.0f} kf/s", f"{e['actor_kf_per_s']:.0f} kf/s", by[b] / e["actor_kf_per_s"])
    if "lstm" in res.get("train", {}):
        c, l = res["train"]["ctt-c"], res["train"]["lstm"]
        row("train", f"{c['trailers']} sequences x 2048-d on {c['device']}: LSTM / CTT-MMC-C s per epoch",
            f"CTT-MMC-C {c['s_per_epoch']:.2f} s", f"LSTM {l['s_per_epoch']:.2f} s", l["s_per_epoch"] / c["s_per_epoch"])
    # Two times of the same work each: (section, what, the faster one's time, the other's, how to show a time).
    pairs: list[tuple[str, str, float, float, Callable[[float], str]]] = []
    if "numpy_s" in res.get("stft", {}):
        s = res["stft"]
        what, ms = f"{s['trailers']} trailers x {s['seconds']:.0f} s ({s['windows']} windows)", "{:.0f} ms".format
        pairs += [("stft", f"{what}: NumPy (decode tasks) / torch.stft on {s['device']}", s["torch_device_s"],
                   s["numpy_s"], lambda t: ms(t * 1e3)),
                  ("stft", f"{what}: torch.stft CPU / on {s['device']} (max diff {s['max_abs_diff']:.1e})",
                   s["torch_device_s"], s["torch_cpu_s"], lambda t: ms(t * 1e3))]
    sh = res.get("shots", {})
    if "skipped" in sh:
        lines.append(f"| shots | skipped: {sh['skipped']} | | | |")
    elif "batched_device_s" in sh:
        what = f"TransNetV2, one {sh['frames']}-frame trailer"
        pairs += [("shots", f"{what}: CPU / {sh['device']} (windows batched, as the actor runs it)",
                   sh["batched_device_s"], sh["batched_cpu_s"], lambda t: f"{sh['frames'] / t:.0f} frames/s"),
                  ("shots", f"{what} on {sh['device']}: package predict_frames / batched "
                   f"(max diff {sh['max_abs_diff']:.1e})", sh["batched_device_s"], sh["package_device_s"],
                   lambda t: f"{sh['frames'] / t:.0f} frames/s")]
    for section, what, fast, slow, show in pairs:
        row(section, what, show(fast), show(slow), slow / fast)
    f = res.get("featurize", {})
    if "skipped" in f:
        lines.append(f"| featurize | skipped: {f['skipped']} | | | |")
    elif "runs" in f:
        d, act = f["runs"]["decode"], f["runs"]["actor"]
        util = "" if d["gpu_util_mean"] is None else \
            f", GPU busy {d['gpu_util_mean']:.0f}% / {act['gpu_util_mean']:.0f}% (mean)"
        row("featurize", f"{f['trailers']} trailers {f['size']} {f['seconds']:.0f} s, {f['backbone']}, "
            f"{f['cpus']} CPUs: spectrograms on actors / in decode tasks{util}",
            f"{act['trailers_per_hour']:.0f} trailers/h", f"{d['trailers_per_hour']:.0f} trailers/h",
            act["trailers_per_hour"] / d["trailers_per_hour"])
    return "\n".join(lines)
