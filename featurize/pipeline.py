"""The featurize job as one Ray Data chain.

    manifest rows --map(decode: PyAV, shots, keyframes, spectrograms, low-level features; CPU tasks)-->
    --map_batches(EmbedAndWrite: actor pool, 1 GPU each or CPU; with shots.detector=transnetv2 first
                  finds the shots and chooses the keyframes; embeds the keyframes and writes
                  the batch's Parquet file into the store, failures into _errors)--> summary rows

Decoding never raises: a file that cannot be read becomes a row with an error, which
the actor writes to `STORE/_errors`. Only small summary rows come back to the driver.
"""
from __future__ import annotations


import logging
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import ray

from featurize import backbone, extract, store
from featurize.backbone import FrameEmbedder
from featurize.config import FeaturizeConfig, use_gpu
from featurize.plan import blocks_for, plan
from featurize.memory import peak_rss_mb

log = logging.getLogger("ctt.featurize")
# The embedder actor's logical memory: a ResNet-152 (240 MB of weights) with a batch of 64
# keyframes at 224 x 224 (about 0.6 GB of activations on CPU); Ray Data saw the GPU actor's
# process peak at 1.2 GiB (benchmark --suite gpu, H200), hence 1.5 GiB. Asking for memory also gives
# this stage other resources than decode's, which keeps Ray Data from fusing the two into
# one actor stage (decode must stay a task pool, one file per core).
EMBED_MEMORY = 3 * 1024**3 // 2


def node_id() -> str:
    """The Ray node this process runs on ("" outside Ray): the summary says where work ran."""
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


def write_batch(batch: dict[str, Any], output: str, dim: int, run: str | None = None) -> dict[str, Any]:
    """Embedded rows into one store file, failed ones into `_errors`; a summary row each.
    `run`: the featurize run's token (`store.begin_run`): a run that lost the store writes nothing."""
    ok, failed = extract.split_batch(batch, dim)
    if ok:
        store.write_atomic(store.features_table(ok, dim), output, run=run)
    if failed:
        store.write_atomic(store.errors_table(failed), output, store.ERRORS_DIR, run=run)
    return {
        "trailer_id": np.asarray(batch["trailer_id"], dtype=object),
        "status": np.array(["failed" if s else "done" for s in batch["error_stage"]], dtype=object),
        "error_type": np.asarray(batch["error_type"], dtype=object),
        "duration_s": np.asarray(batch["duration_s"], np.float64),
        "decode_node": np.asarray(batch["decode_node"], dtype=object),
        "embed_node": np.array([node_id()] * len(batch["trailer_id"]), dtype=object),
    }


def decode_task(row: dict[str, Any], cfg: FeaturizeConfig, stft_in_actor: bool = False) -> dict[str, Any]:
    """`extract.decode_row` as a Ray Data task, which records the node it ran on."""
    return extract.decode_row(row, cfg, stft_in_actor, node_id())


class EmbedAndWrite(FrameEmbedder):
    """The embedder actor also writes its batch: files land as soon as trailers are embedded,
    with no separate write stage to wait for CPU behind decode (a killed run keeps them).
    A learned shot detector lives here too, beside the backbone on the actor's device."""

    def __init__(self, cfg: FeaturizeConfig, device: str, output: str, dim: int, run: str | None = None):
        super().__init__(cfg.backbone, device)
        self.featurize, self.output, self.dim, self.run = cfg, output, dim, run
        self.shot_model = extract.shot_model(cfg, device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.shot_model is not None:
            batch = extract.place_rows(batch, self.shot_model, self.featurize)
        return write_batch(super().__call__(batch), self.output, self.dim, self.run)


def verdict(summary: dict[str, Any], max_failed_fraction: float) -> str:
    """Why a run counts as failed ("" when it did its job): nothing it tried succeeded, or more
    than `max_failed_fraction` of what it tried failed. A rerun with nothing left to do is fine."""
    tried = summary["done"] + summary["failed"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["failed_by_reason"].items()))
    if tried and not summary["done"]:
        return f"no trailer succeeded: all {tried} failed ({reasons})"
    if tried and summary["failed"] / tried > max_failed_fraction:
        return (f"{summary['failed']} of {tried} trailers failed ({reasons}), more than "
                f"featurize.max_failed_fraction={max_failed_fraction}")
    return ""


def run_featurize(input: str, output: str, cfg: FeaturizeConfig, retry_errors: bool = False,
                  dry_run: bool = False, manifest: pd.DataFrame | None = None) -> dict[str, Any]:
    """Featurize every trailer of `input` not yet in `output`; returns the run summary.
    `dry_run` plans and stops before Ray: the manifest read and checked, the store's
    settings checked and its done ids read, the to-do rows and blocks counted; nothing written.
    `manifest`: `input` as the caller already read it."""
    t0 = time.time()
    gpus = 0 if dry_run else ray.cluster_resources().get("GPU", 0)
    p = plan(input, output, cfg, retry_errors, dry_run, manifest, gpus)
    cfg, todo, summary, run, compacted = p.cfg, p.todo, p.summary, p.run, p.compacted
    if dry_run:
        return summary
    if len(todo):
        dim = backbone.feature_dim(cfg.backbone)
        gpu = use_gpu(cfg.use_gpu, ray.cluster_resources().get("GPU", 0))
        cpus = ray.cluster_resources().get("CPU", 1)
        if gpu:
            actors = cfg.embed_actors or int(ray.cluster_resources().get("GPU", 1))
            embed_res = {"num_gpus": 1, "num_cpus": 1}
        else:
            actors = cfg.embed_actors or max(1, int(cpus // 2))
            embed_res = {"num_gpus": 0, "num_cpus": cfg.embed_cpus}
        stft_in_actor = cfg.spectrograms_on == "actor"      # auto: the decode task has them already
        rows = todo.to_dict("records")
        ds = ray.data.from_items(rows, override_num_blocks=blocks_for(len(rows)))
        ds = ds.map(decode_task, fn_kwargs={"cfg": cfg, "stft_in_actor": stft_in_actor}, num_cpus=cfg.decode_cpus)
        ds = ds.map_batches(
            EmbedAndWrite, batch_size=cfg.trailers_per_batch,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            fn_constructor_kwargs={"cfg": cfg, "device": "cuda" if gpu else "cpu",
                                   "output": output, "dim": dim, "run": run},
            memory=EMBED_MEMORY,
            **embed_res)
        reasons: Counter[str] = Counter()
        decode_nodes: Counter[str] = Counter()
        embed_nodes: Counter[str] = Counter()
        every = max(1, len(rows) // 20)                  # about 20 progress lines a run
        for k, row in enumerate(ds.iter_rows(), 1):
            if k % every == 0 or k == len(rows):
                log.info("featurize %d/%d", k, len(rows))
            decode_nodes[row["decode_node"]] += 1
            embed_nodes[row["embed_node"]] += 1
            if row["status"] == "done":
                summary["done"] += 1
                summary["video_hours"] += float(row["duration_s"]) / 3600.0
            else:
                summary["failed"] += 1
                reasons[row["error_type"]] += 1
        summary["failed_by_reason"] = dict(reasons)
        summary["nodes"] = {"decode": dict(decode_nodes), "embed": dict(embed_nodes)}   # trailers per node id
    after = store.compact(output)
    summary["compacted"] = {k: compacted[k] + after[k] for k in compacted}
    summary["wall_s"] = round(time.time() - t0, 1)
    summary["driver_peak_rss_mb"] = round(peak_rss_mb(), 1)
    summary["video_hours"] = round(summary["video_hours"], 4)
    return summary
