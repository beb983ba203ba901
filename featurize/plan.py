"""What a featurize run will do, decided before any Ray work: `shots.detector=auto` resolved,
the manifest read, the store claimed (or checked, for a dry run) and its done ids read, the
to-do rows and decode blocks counted. No Ray and no MLflow here, so `--dry-run` answers in
seconds."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from featurize import backbone, shot_detectors, store
from featurize.config import FeaturizeConfig, use_gpu
from featurize.manifest import read_manifest
from featurize.memory import peak_rss_mb
from featurize.settings import to_settings

log = logging.getLogger("ctt.featurize")
# One trailer per block, so each decode task is one file, up to this many blocks; beyond,
# blocks hold several trailers (100,000 trailers: 2,000 blocks of 50), which keeps the
# plan small while leaving more decode tasks than any cluster has cores.
MAX_BLOCKS = 2000


def blocks_for(rows: int) -> int:
    """Ray Data blocks of the decode stage: one trailer each up to MAX_BLOCKS."""
    return min(rows, MAX_BLOCKS)


@dataclass
class Plan:
    cfg: FeaturizeConfig             # with shots.detector resolved
    todo: pd.DataFrame               # the manifest rows still to featurize
    summary: dict[str, Any]          # the run summary so far (the whole answer of a dry run)
    run: str | None                  # the store's run fence this run holds (None: dry run)
    compacted: dict[str, int]


def plan(input: str, output: str, cfg: FeaturizeConfig, retry_errors: bool = False, dry_run: bool = False,
         manifest: pd.DataFrame | None = None, gpus: float = 0) -> Plan:
    """The run's plan; unless `dry_run`, the store is taken for this run (a killed run's late
    writes are dropped) and compacted. `gpus`: the cluster's, for `shots.detector=auto`."""
    t0 = time.time()
    if cfg.shots.detector == shot_detectors.AUTO:
        name = shot_detectors.resolve(cfg.shots.detector, use_gpu(cfg.use_gpu, gpus))
        log.info("shots.detector=auto: %s (%s)", name, "GPU embedder actors" if name != "hsv" else
                 "no GPU embedder actors or no transnetv2 package")
        cfg = dataclasses.replace(cfg, shots=dataclasses.replace(cfg.shots, detector=name))
    shot_detectors.require(cfg.shots.detector)    # before any work: the driver's environment stands for the nodes'
    manifest = read_manifest(input) if manifest is None else manifest
    store.claim(output, to_settings(cfg), write=not dry_run)
    run, compacted = None, {}
    if not dry_run:                   # from here on only this run writes; what a killed one left twice goes
        run = store.begin_run(output)
        compacted = store.compact(output)
    if retry_errors and not dry_run:
        store.clear_errors(output)
    done = store.done_ids(output) | (set() if retry_errors else store.error_ids(output))
    todo = manifest[~manifest["trailer_id"].isin(done)]
    summary: dict[str, Any] = {"input": input, "output": output, "started_at": round(t0, 3), "trailers": len(manifest),
                               "skipped": len(manifest) - len(todo), "done": 0, "failed": 0,
                               "failed_by_reason": {}, "video_hours": 0.0,
                               "backbone": backbone.label(cfg.backbone), "shot_detector": cfg.shots.detector}
    log.info("featurize: %d trailers in %s, %d already in %s, %d to do; backbone %s",
             len(manifest), input, summary["skipped"], output, len(todo), summary["backbone"])
    if dry_run:
        summary |= {"dry_run": True, "to_do": len(todo), "blocks": blocks_for(len(todo)),
                    "driver_peak_rss_mb": round(peak_rss_mb(), 1), "wall_s": round(time.time() - t0, 1)}
    return Plan(cfg, todo, summary, run, compacted)
