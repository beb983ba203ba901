"""MLflow runs of the jobs that do not train with Ray Train: a method that is scored (Two-Nets
fusion, SVM and random baselines) gets the same params, metrics and artifacts as a training
run, so every method lines up in the MLflow UI and in the report; a featurize run records
what made a store and what it holds."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ctt import metrics as M
from ctt import qa, repeats, tracking
from ctt.config import Config, flatten, sections_of, to_dict
from ctt.fusion import Split, align, choose_weight, fuse, per_genre_weights, weight_grid
from ctt.predictor import Predictor, fused
from featurize import store
from featurize.genres import GENRES



def featurizer_params(settings: dict | None) -> dict[str, Any]:
    """A store's `_featurizer.json` as `featurizer.*` params: the settings that made the
    features, flattened (the runtime-only fields, recorded as null, are left out)."""
    flat = flatten((settings or {}).get("settings", {}), "featurizer.")
    return {k: v for k, v in flat.items() if v is not None}


def log_method_run(cfg: Config, job: str, method: str, test: Split, val: Split | None = None,
                   params: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None, servable: Predictor | None = None,
                   store_path: str = "", tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Log a finished method: config + params, test metrics and artifacts, val predictions,
    and `model/<method>.json` (what is needed to apply the method again); with `store_path`,
    the store it read as its dataset input and its featurizer settings as params; with
    `servable`, its pyfunc model at the thresholds chosen on val, registered when the config says."""
    run_name = cfg.tracking.run_name or f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    ids, y, probs = test
    registered = None
    with tracking.open_run(cfg.tracking.experiment, run_name,
                           {"method": method, "kind": "score"} | (tags or {})) as run_id:
        settings = store.settings_of(store_path) if store_path else None
        tracking.log_params(run_id, flatten(sections_of(cfg, job)) | {"method": method, "n_test": len(ids)}
                            | featurizer_params(settings) | (params or {}))
        if settings is not None:
            tracking.log_store_input(store_path, settings, store.files(store_path))
        tracking.log_dict(run_id, to_dict(cfg), "config/resolved_config.json")
        thresholds = {}
        if val is not None:
            tracking.log_predictions(run_id, "val", *val)
            thresholds = tracking.log_thresholds(run_id, val[1], val[2])
        test_metrics = M.evaluate(y, probs, prefix="test_", thresholds=thresholds or None)
        tracking.log_evaluation(run_id, "test", ids, y, probs, test_metrics, extra=(extra or {}) | {"method": method})
        if model is not None:
            tracking.log_dict(run_id, model, f"model/{method}.json")
        if servable is not None:
            servable.source, servable.thresholds = run_id, thresholds or servable.thresholds
            uri = tracking.log_servable(servable)
            if cfg.tracking.register_as:
                registered = tracking.register(uri, run_id, cfg.tracking.register_as, cfg.tracking.register_alias,
                                               servable.featurizer, servable.thresholds)
    return {"run_id": run_id, "run_name": run_name, "method": method, "test": test_metrics,
            "tracking_uri": tracking.tracking_uri(), "registered": registered} | tracking.ui_links(run_id)


def log_featurize_run(cfg: Config, summary: dict[str, Any], problem: str = "") -> str:
    """The featurize job as an MLflow run (tag kind=featurize): the settings that made the
    store, the run's counts and throughput, the summary and the store's errors table as
    artifacts, and the store as the run's dataset (context `output`)."""
    out = summary["output"]
    run_name = cfg.tracking.run_name or f"featurize-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = store.settings_of(out) or {}
    with tracking.open_run(cfg.tracking.experiment, run_name, {"kind": "featurize", "store": out}) as run_id:
        tracking.log_params(run_id, flatten(sections_of(cfg, "featurize"))
                            | featurizer_params(settings) | {"input": summary["input"], "output": out})
        hours = summary["wall_s"] / 3600
        tracking.log_metrics(run_id, {k: float(summary[k]) for k in ("trailers", "skipped", "done", "failed",
                                                                    "video_hours", "wall_s")}
                             | {"trailers_per_hour": (summary["done"] + summary["failed"]) / hours if hours else 0.0})
        tracking.log_dict(run_id, summary, "featurize/summary.json")
        if store.error_ids(out):
            tracking.log_table(run_id, store.read_table(out.rstrip("/") + "/" + store.ERRORS_DIR).to_pandas(),
                               "featurize/errors.csv")
        tracking.log_store_input(out, settings, store.files(out), context="output")
        if store.files(out):
            with tempfile.TemporaryDirectory() as tmp:
                tracking.log_files(run_id, qa.store_pictures(out, cfg.featurize.qa_samples, Path(tmp), cfg.featurize),
                                   "qa")
        if problem:
            tracking.set_tag(run_id, "failed_because", problem)
    return run_id


def run_fusion(visual_run: str, audio_run: str, cfg: Config, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Fuse two logged runs into a CTT-MMC-TN run of its own, whose pyfunc model holds both
    members' networks and the chosen weight. Two repeat parents (`ctt.repeats`) are fused
    child by child, paired by seed, under a CTT-MMC-TN parent."""
    tracking.connect(cfg.tracking.experiment)
    vk, ak = repeats.children_by_seed(cfg.tracking.experiment, visual_run), \
        repeats.children_by_seed(cfg.tracking.experiment, audio_run)
    if vk or ak:
        seeds = sorted(set(vk) & set(ak))
        if not seeds:
            raise LookupError(f"runs {visual_run} and {audio_run}: no seed repeated in both "
                              f"(visual {sorted(vk)}, audio {sorted(ak)})")
        return repeats.run_repeats(cfg, "fuse", "ctt-tn", seeds, lambda c, t: _fuse_pair(
            vk[c.train.seed], ak[c.train.seed], c, t))
    return _fuse_pair(visual_run, audio_run, cfg, tags)


def _fuse_pair(visual_run: str, audio_run: str, cfg: Config, tags: dict[str, str] | None) -> dict[str, Any]:
    splits = {}
    for split in ("val", "test"):
        ids, y, pv, pa = align(tracking.read_predictions(visual_run, split), tracking.read_predictions(audio_run, split))
        splits[split] = (ids, y, pv, pa)
    vid, vy, vpv, vpa = splits["val"]
    grid = weight_grid(cfg.fusion.step)
    w_global, scores = choose_weight(vy, vpv, vpa, grid)
    w = per_genre_weights(vy, vpv, vpa, grid, w_global, cfg.fusion.shrink).tolist() if cfg.fusion.per_genre \
        else w_global
    tid, ty, tpv, tpa = splits["test"]
    servable = fused(tracking.load_servable(visual_run), tracking.load_servable(audio_run), w, {}, f"{visual_run}+{audio_run}")
    summary = log_method_run(
        cfg, "fuse", "ctt-tn", test=(tid, ty, fuse(tpv, tpa, w)), val=(vid, vy, fuse(vpv, vpa, w)),
        params={"visual_run": visual_run, "audio_run": audio_run, "visual_weight": w_global,
                "test_without_audio": int(np.isnan(tpa).any(axis=1).sum())}
        | ({f"visual_weight_{g}": x for g, x in zip(GENRES, w)} if cfg.fusion.per_genre else {}),
        model={"visual_run": visual_run, "audio_run": audio_run, "visual_weight": w},
        extra={"val_auprc_micro_by_visual_weight": scores}, servable=servable, tags=tags)
    tracking.log_metrics(summary["run_id"], {"visual_weight": w_global})
    summary |= {"visual_weight": w, "val_scores": scores}
    return summary
