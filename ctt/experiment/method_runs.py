"""MLflow runs of the methods that are scored rather than trained with Ray Train (Two-Nets
fusion, SVM, random and probe baselines): each gets the same params, metrics and artifacts
as a training run, so every method lines up in the MLflow UI and in the report."""
from __future__ import annotations

from typing import Any

import numpy as np

from ctt import metrics as M
from ctt.config import Config
from ctt.experiment import repeats
from ctt.experiment.tracking import connection, model_package, reading, recording, registry
from ctt.fusion import Split, align, fit_weights, fuse
from ctt.predictor import Predictor, fused
from ctt.thresholds import best_f1_thresholds
from featurize import store
from featurize.genres import GENRES


def log_method_run(cfg: Config, job: str, method: str, test: Split, val: Split | None = None,
                   params: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None, servable: Predictor | None = None,
                   store_path: str = "", tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Log a finished method: config + params, test metrics and artifacts, val predictions,
    and `model/<method>.json` (what is needed to apply the method again); with `store_path`,
    the store it read as its dataset input and its featurizer settings as params; with
    `servable`, its pyfunc model at the thresholds chosen on val, registered when the config says."""
    name = recording.run_name(cfg, method)
    ids, y, probs = test
    registered = None
    settings = store.settings_of(store_path) if store_path else None
    data = recording.StoreInput(store_path, settings, store.files(store_path)) if settings is not None else None
    with recording.record_run("score", name, cfg=cfg, job=job, params={"method": method, "n_test": len(ids)} | (params or {}),
                              tags={"method": method} | (tags or {}), store=data) as run_id:
        thresholds = {}
        if val is not None:
            recording.log_predictions(run_id, "val", *val)
            thresholds = best_f1_thresholds(val[1], val[2])
            recording.log_thresholds(run_id, thresholds)
        test_metrics = M.evaluate(y, probs, prefix="test_", thresholds=thresholds or None)
        recording.log_evaluation(run_id, "test", ids, y, probs, test_metrics, extra=(extra or {}) | {"method": method})
        if model is not None:
            recording.log_dict(run_id, model, f"model/{method}.json")
        if servable is not None:
            servable.source, servable.thresholds = run_id, thresholds or servable.thresholds
            uri = model_package.log_servable(servable)
            if cfg.tracking.register_as:
                registered = registry.register(uri, run_id, cfg.tracking.register_as, cfg.tracking.register_alias,
                                               servable.featurizer, servable.thresholds)
    return {"run_id": run_id, "run_name": name, "method": method, "test": test_metrics,
            "tracking_uri": connection.tracking_uri(), "registered": registered} | connection.ui_links(run_id)


def run_fusion(visual_run: str, audio_run: str, cfg: Config, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Fuse two logged runs into a CTT-MMC-TN run of its own, whose pyfunc model holds both
    members' networks and the chosen weight. Two repeat parents (`repeats`) are fused
    child by child, paired by seed, under a CTT-MMC-TN parent."""
    connection.connect(cfg.tracking.experiment)
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
    (vid, vy, vpv, vpa), (tid, ty, tpv, tpa) = (
        align(reading.read_predictions(visual_run, s), reading.read_predictions(audio_run, s)) for s in ("val", "test"))
    w, w_global, scores = fit_weights(vy, vpv, vpa, cfg.fusion.step, cfg.fusion.per_genre, cfg.fusion.shrink)
    servable = fused(model_package.load_servable(visual_run), model_package.load_servable(audio_run), w, {},
                     f"{visual_run}+{audio_run}")
    summary = log_method_run(
        cfg, "fuse", "ctt-tn", test=(tid, ty, fuse(tpv, tpa, w)), val=(vid, vy, fuse(vpv, vpa, w)),
        params={"visual_run": visual_run, "audio_run": audio_run, "visual_weight": w_global,
                "test_without_audio": int(np.isnan(tpa).any(axis=1).sum())}
        | ({f"visual_weight_{g}": x for g, x in zip(GENRES, w)} if cfg.fusion.per_genre else {}),
        model={"visual_run": visual_run, "audio_run": audio_run, "visual_weight": w},
        extra={"val_auprc_micro_by_visual_weight": scores}, servable=servable, tags=tags)
    recording.log_metrics(summary["run_id"], {"visual_weight": w_global})
    summary |= {"visual_weight": w, "val_scores": scores}
    return summary
