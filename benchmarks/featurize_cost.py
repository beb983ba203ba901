"""Featurizer stages measured against their physical limits, side by side on the same inputs.

Each function times the pipeline's own code and a bare reference on the same data in
the same process, so the ratio holds on any machine; `jobs/benchmark.py` runs them all.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import av
import librosa
import numpy as np
import pandas as pd
import torch

from benchmarks import peers
from featurize import audio
from featurize.backbone import FrameEmbedder, crop_size, feature_dim
from featurize.config import BackboneConfig, FeaturizeConfig
from featurize.extract import decode, decode_row
from featurize.memory import vm_hwm_bytes
from featurize.pipeline import run_featurize
from featurize.sample_trailers import SampleSpec, render_trailer


@dataclass
class Clip:
    path: str
    width: int
    height: int
    seconds: float
    fps: int


def _render_clip(job: tuple) -> None:
    path, genres, seed, spec = job
    tmp = path.with_suffix(".part.mp4")
    render_trailer(tmp, genres, seed, spec)
    tmp.rename(path)


def render_clips(out: Path, sizes: list[tuple[int, int]], seconds: float, fps: int = 24,
                 per_size: int = 1, seed: int = 0) -> list[Clip]:
    """Synthetic trailers at realistic settings (H.264 + AAC 44.1 kHz), reused if present;
    the missing ones rendered one per core."""
    out.mkdir(parents=True, exist_ok=True)
    clips, jobs = [], []
    genres = [["action", "scifi"], ["drama"], ["comedy", "romance"], ["horror", "thriller"]]
    for w, h in sizes:
        for k in range(per_size):
            path = out / f"bench_{w}x{h}_{int(seconds)}s_{k}.mp4"
            if not path.exists():
                spec = SampleSpec(width=w, height=h, fps=fps, min_seconds=seconds, max_seconds=seconds + 1e-3)
                jobs.append((path, genres[k % len(genres)], seed + k, spec))
            clips.append(Clip(str(path), w, h, seconds, fps))
    if len(jobs) > 1 and cpu_count() > 1:
        with ProcessPoolExecutor(min(len(jobs), cpu_count()), mp.get_context("spawn")) as pool:
            list(pool.map(_render_clip, jobs))
    else:
        for j in jobs:
            _render_clip(j)
    return clips


def best_of(fn: Callable[[], Any], repeat: int = 2) -> tuple[float, Any]:
    """The fastest of `repeat` runs (the least disturbed by the rest of the machine)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def decode_only(path: str, thread_type: str = "AUTO", thread_count: int = 0) -> int:
    """The floor: demux and decode every video frame and every audio frame, convert nothing."""
    n = 0
    with av.open(path) as c:
        vs = c.streams.video[0]
        vs.thread_type = thread_type
        vs.codec_context.thread_count = thread_count
        streams = [vs] + list(c.streams.audio[:1])
        for packet in c.demux(*streams):
            for frame in packet.decode():
                n += packet.stream.type == "video"
    return n


def best_decode(path: str, repeat: int = 2) -> tuple[float, str]:
    """Decode-only time under each thread setting; the fastest is the reference."""
    results = {}
    for tt, count in (("SLICE", 0), ("FRAME", 0), ("AUTO", 0)):
        results[f"{tt}"] = best_of(lambda: decode_only(path, tt, count), repeat)[0]
    name = min(results, key=results.get)
    return results[name], name


ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def _busy_worker(path: str, cfg: FeaturizeConfig, thread_type: str, repeat: int, barrier, results) -> None:
    featurize_cpu(path, cfg)                                   # warm-up: JIT, tables, FFT plans
    decode_only(path, thread_type, 1)
    times = {"decode_s": float("inf"), "featurize_s": float("inf")}
    for _ in range(repeat):
        for name, fn in (("decode_s", lambda: decode_only(path, thread_type, 1)),
                         ("featurize_s", lambda: featurize_cpu(path, cfg))):
            barrier.wait()
            t = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - t)
    results.put(times)


def every_core_busy(path: str, cfg: FeaturizeConfig, processes: int, thread_type: str = "SLICE",
                    repeat: int = 2) -> dict[str, float]:
    """Throughput as the pipeline runs: one single-threaded decode per core, all at once.
    Decode-only and the featurizer each start together behind a barrier, `repeat` rounds
    of each in turn; each process keeps its best round. The time returned is the harmonic
    mean over processes, so processes x frames / time is the frames per second of all
    cores together."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    one = dataclasses.replace(cfg, decode_threads=1)
    procs = [ctx.Process(target=_busy_worker, args=(path, one, thread_type, repeat, barrier, results))
             for _ in range(processes)]
    saved = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update(ONE_THREAD)              # as Ray sets for a 1-CPU task: no BLAS/numba thread pools
    try:
        for p in procs:
            p.start()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    got = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    return {k: len(got) / sum(1.0 / g[k] for g in got) for k in ("decode_s", "featurize_s")} \
        | {"processes": processes, "slowest": {k: max(g[k] for g in got) for k in ("decode_s", "featurize_s")}}


def featurize_cpu(path: str, cfg: FeaturizeConfig) -> dict[str, Any]:
    """The decode task of the pipeline: decode + shots + keyframes + spectrograms + low-level."""
    row = decode_row({"trailer_id": "b", "path": path, "split": "", "genres": []}, cfg)
    if row["error_stage"]:
        raise RuntimeError(f"{path}: {row['error_type']}: {row['error_message']}")
    return row


def backbone_stage(keyframes: np.ndarray, cfg, repeat: int = 2) -> dict[str, float]:
    """The embedder actor's call (batching, normalisation, copies) vs the bare model forward
    on the same keyframe batches already in tensor form."""
    emb = FrameEmbedder(cfg, "cuda" if torch.cuda.is_available() else "cpu")
    holder = np.empty(1, dtype=object)
    holder[0] = keyframes
    batch = {"keyframes": holder, "trailer_id": np.array(["b"])}
    emb(batch)                                                                # warm-up
    t_pipe, _ = best_of(lambda: emb(batch), repeat)
    x = torch.from_numpy(np.ascontiguousarray(keyframes)).to(emb.device).permute(0, 3, 1, 2).float()
    x = ((x - emb.mean) / emb.std).contiguous()
    chunks = list(torch.split(x, cfg.batch_size))

    @torch.inference_mode()
    def bare():
        for c in chunks:
            emb.model(c)
        if emb.gpu:
            torch.cuda.synchronize()
    bare()
    t_bare, _ = best_of(bare, repeat)
    return {"keyframes": len(keyframes), "pipeline_s": t_pipe, "bare_s": t_bare,
            "pipeline_kf_per_s": len(keyframes) / t_pipe, "bare_kf_per_s": len(keyframes) / t_bare,
            "device": str(emb.device), "bf16": bool(emb.gpu and cfg.bf16),
            "channels_last": bool(emb.gpu and cfg.channels_last)}


def spectrogram_stage(y: np.ndarray, repeat: int = 3) -> dict[str, float]:
    """The pipeline's spectrogram call vs one bare STFT over the same windows."""
    audio.spectrograms(y[:audio.WINDOW])                                       # numba / FFT plan warm-up
    t_pipe, S = best_of(lambda: audio.spectrograms(y), repeat)
    w, _ = audio.windows(y)
    t_bare, _ = best_of(lambda: np.abs(librosa.stft(w, n_fft=audio.N_FFT, hop_length=audio.HOP)), repeat)
    out = {"windows": len(S[0]), "pipeline_s": t_pipe, "bare_librosa_s": t_bare}
    try:
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        audio.spectrograms_torch(y[:audio.WINDOW], dev)

        def torch_stft():
            S, _ = audio.spectrograms_torch(y, dev)
            if dev == "cuda":
                torch.cuda.synchronize()
        out["torch_stft_s"], _ = best_of(torch_stft, repeat)
        out["torch_device"] = dev
    except Exception as e:      # torch.stft is optional here: report why it is missing
        out["torch_stft_error"] = f"{type(e).__name__}: {e}"
    return out


class PeakRSS:
    """Peak resident memory (VmHWM) of every Ray worker process (ray::*) of this node, read
    from /proc while the job runs (Linux)."""

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak, self._stop = interval, {}, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _scan(self) -> None:
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if not (d / "cmdline").read_bytes().startswith(b"ray::"):
                    continue
                hwm = vm_hwm_bytes(d.name)
                if hwm is not None:
                    self.peak[int(d.name)] = max(self.peak.get(int(d.name), 0), hwm)
            except OSError:
                continue

    def _run(self) -> None:
        while not self._stop.is_set():
            self._scan()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._scan()

    @property
    def max_mb(self) -> float:
        return max(self.peak.values(), default=0) / 2**20


def featurize_memory(clips: list[Clip], n: int, cfg: FeaturizeConfig, work: Path) -> dict[str, Any]:
    """Run the whole featurize job on n trailers (clips reused under new ids) on the Ray
    instance the caller started (a fresh one per call, so the peaks are this run's); peak
    RSS of its worker processes, wall time, video seconds."""
    rows = [{"trailer_id": f"t{i:05d}", "path": clips[i % len(clips)].path, "genres": "drama", "split": "train"}
            for i in range(n)]
    manifest = work / f"manifest_{n}.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    out = work / f"store_{n}"
    shutil.rmtree(out, ignore_errors=True)
    with PeakRSS() as mem:
        t = time.perf_counter()
        summary = run_featurize(str(manifest), str(out), cfg)
        wall = time.perf_counter() - t
    if summary["failed"]:
        raise RuntimeError(f"featurize failed on {summary['failed']} benchmark trailers: {summary['failed_by_reason']}")
    return {"trailers": n, "wall_s": wall, "peak_worker_rss_mb": mem.max_mb,
            "video_s": summary["video_hours"] * 3600, "workers_seen": len(mem.peak)}


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def decode_audio(path: str) -> np.ndarray:
    """The clip's audio as the pipeline sees it: 44.1 kHz mono float32."""
    return decode(path, FeaturizeConfig()).audio










def diy_vs_project(paths: list[str], cfg: FeaturizeConfig) -> dict[str, Any]:
    """Trailers per CPU-hour of this project's decode task plus its embedder, and of the
    do-it-yourself reference, on the same files with the same backbone; shapes compared."""
    missing = peers.scenedetect_available()
    if missing:
        return {"skipped": missing}
    emb = FrameEmbedder(cfg.backbone, "cpu")
    diy = peers.DiyFeaturizer(cfg)

    def ours(path: str) -> dict[str, np.ndarray]:
        row = featurize_cpu(path, dataclasses.replace(cfg, decode_threads=1))
        S = np.asarray(row["spectrograms"], np.float32).reshape(-1, audio.FRAMES, audio.BINS)
        return {"frames": emb.embed(row["keyframes"]), "spectrograms": S}
    res: dict[str, Any] = {"trailers": len(paths), "backbone": cfg.backbone.name}
    for name, fn in (("project", ours), ("diy", diy)):
        fn(paths[0])                                                   # warm-up
        cpu, outs = 0.0, []
        for p in paths:
            o, _, c = peers.timed(lambda: fn(p))
            cpu += c
            outs.append(o)
        res[name] = {"cpu_s": cpu, "trailers_per_hour_per_core": len(paths) / cpu * 3600,
                     "shapes": [{k: list(v.shape) for k, v in o.items()} for o in outs]}
    same = all(a["frames"][1:] == b["frames"][1:] and a["spectrograms"] == b["spectrograms"]
               for a, b in zip(res["project"]["shapes"], res["diy"]["shapes"]))
    res["same_shapes"] = same              # keyframe counts may differ: each pipeline's own shots
    return res


def backbone_costs(names: list[str], keyframes: int, repeat: int = 2) -> dict[str, dict[str, Any]]:
    """Keyframes per second of the embedder actor's call for each backbone (random weights:
    the same arithmetic as trained ones) on the same random keyframes at each one's crop."""
    rng = np.random.default_rng(0)
    out = {}
    for name in names:
        cfg = BackboneConfig(name=name, weights="none")
        try:
            emb = FrameEmbedder(cfg, "cuda" if torch.cuda.is_available() else "cpu")
        except ValueError as e:                      # an optional family that is not installed
            out[name] = {"skipped": str(e)}
            continue
        size = crop_size(cfg)
        images = rng.integers(0, 256, (keyframes, size, size, 3), dtype=np.uint8)
        emb.embed(images[:2])
        t, _ = best_of(lambda: emb.embed(images), repeat)
        out[name] = {"kf_per_s": keyframes / t, "dim": feature_dim(cfg), "crop": size,
                     "params_m": sum(p.numel() for p in emb.model.parameters()) / 1e6}
    return out
