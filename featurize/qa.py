"""Pictures of what featurize saw, to check it cut a trailer sensibly: a contact sheet of
the keyframes with their times, the shot detector's smoothed similarity curve with the
cuts and the threshold, and a store's distributions (keyframes per trailer, shot lengths,
durations, failures by reason). The store keeps features, not images, so a trailer of a
store is decoded again from its source, with the settings that made the store."""
from __future__ import annotations

import dataclasses

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from featurize import figures
from featurize import shot_detectors, store
from featurize.config import FeaturizeConfig
from featurize.settings import from_settings
from featurize.extract import decode

log = logging.getLogger("featurize.qa")


class NotInStore(LookupError):
    pass


def source_of(target: str, trailer_id: str, base: FeaturizeConfig | None = None) -> tuple[str, FeaturizeConfig]:
    """(video path, featurizer config) of `trailer_id`: from a store's row and settings when
    `target` is a store, else `target` itself is the video, featurized with `base`."""
    settings = store.settings_of(target)
    if settings is None:
        return target, base or FeaturizeConfig()
    t = store.read_table(target, columns=["trailer_id", "source_path"], filter=pc.field("trailer_id") == trailer_id)
    if not t.num_rows:
        raise NotInStore(f"{target} has no trailer {trailer_id!r}")
    return t.column("source_path")[0].as_py(), from_settings(settings, base)


def on_cpu(cfg: FeaturizeConfig) -> FeaturizeConfig:
    """`shots.detector=auto` as this machine's CPU resolves it: the hsv rule."""
    if cfg.shots.detector != shot_detectors.AUTO:
        return cfg
    return dataclasses.replace(cfg, shots=dataclasses.replace(
        cfg.shots, detector=shot_detectors.resolve(cfg.shots.detector, gpu=False)))


def inspect_trailer(path: str, cfg: FeaturizeConfig, out_dir: Path, name: str) -> dict[str, Any]:
    """Decode `path` as featurize does and draw `<name>_keyframes.png` and `<name>_shots.png`
    (`shots.detector=auto` is this machine's CPU: the hsv rule)."""
    cfg = on_cpu(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    d = decode(path, cfg)
    files = {"keyframes": out_dir / f"{name}_keyframes.png", "shots": out_dir / f"{name}_shots.png"}
    labels = [f"shot {i + 1}" for i in range(len(d.keyframes))]
    figures.save(figures.contact_sheet(d.keyframes, d.frame_times.tolist(), f"{name}: {len(d.keyframes)} keyframes, "
                                       f"{d.duration_s:.1f} s", labels=labels), files["keyframes"])
    detector = shot_detectors.get(cfg.shots.detector)
    threshold, label = (1 - cfg.shots.hard_change, "HSV similarity to the frame before (across flashes)") \
        if detector.online else \
        (1 - detector.threshold(cfg.shots), f"1 - {detector.name} transition probability")
    figures.save(figures.shot_curve(d.similarity, d.cuts, threshold, d.fps, d.frame_times.tolist(),
                                    f"{name}: {len(d.cuts)} cuts in {d.n_frames} frames", label=label,
                                    first=1 if detector.online else 0), files["shots"])
    return {"trailer": name, "path": path, "n_frames": d.n_frames, "duration_s": round(d.duration_s, 3),
            "keyframes": len(d.keyframes), "cuts": len(d.cuts), "decode_errors": d.decode_errors,
            "files": {k: str(v) for k, v in files.items()}}


def shot_lengths(table) -> np.ndarray:
    """Seconds between the shots of the stored keyframes (the last runs to the end)."""
    out = []
    for starts, n, fps in zip(table.column("shot_starts").to_pylist(), table.column("n_frames").to_pylist(),
                              table.column("fps").to_pylist()):
        if fps and starts and min(starts) >= 0:
            edges = np.append(np.asarray(starts, np.float64), n)
            out.extend(np.diff(edges) / fps)
    return np.asarray(out, np.float64)


def store_overview(store_path: str, out_png: Path) -> dict[str, Any]:
    """Histograms of a store (and its failures by reason) as one PNG."""
    t = store.read_table(store_path, columns=["num_keyframes", "duration_s", "shot_starts", "n_frames", "fps"])
    failures: Counter = Counter()
    if store.error_ids(store_path):
        errs = store.read_table(store_path.rstrip("/") + "/" + store.ERRORS_DIR, columns=["error_type"])
        failures.update(errs.column("error_type").to_pylist())
    out_png.parent.mkdir(parents=True, exist_ok=True)
    durations = np.asarray(t.column("duration_s").to_pylist(), np.float64)
    figures.save(figures.store_histograms(np.asarray(t.column("num_keyframes").to_pylist()), shot_lengths(t),
                                      durations, dict(failures), f"{store_path}: {t.num_rows} trailers"), out_png)
    return {"trailers": t.num_rows, "failed": sum(failures.values()), "file": str(out_png)}


def sample_ids(store_path: str, n: int) -> list[str]:
    """`n` stored trailers spread over the sorted ids (the same ones on every call)."""
    ids = sorted(store.read_table(store_path, columns=["trailer_id"]).column(0).to_pylist())
    if n <= 0 or not ids:
        return []
    return [ids[i] for i in sorted(set(np.linspace(0, len(ids) - 1, min(n, len(ids))).astype(int).tolist()))]


def store_pictures(store_path: str, n: int, out_dir: Path, base: FeaturizeConfig | None = None) -> list[Path]:
    """The overview and `n` sampled trailers' pictures; a trailer that cannot be decoded again
    (its source moved) is skipped with a warning, never an error of the job."""
    files = [Path(store_overview(store_path, out_dir / "store_overview.png")["file"])]
    for tid in sample_ids(store_path, n):
        try:
            path, cfg = source_of(store_path, tid, base)
            files += [Path(f) for f in inspect_trailer(path, cfg, out_dir, tid)["files"].values()]
        except Exception as e:       # QA pictures are a courtesy: the store is already written
            log.warning("no QA pictures for %s: %s: %s", tid, type(e).__name__, e)
    return files


def pair_sheet(store_path: str, pairs: list[dict[str, Any]], out_png: Path, base: FeaturizeConfig | None = None,
               shots_per_pair: int = 3) -> Path | None:
    """The near-duplicate finder's top pairs side by side: for each pair (`trailer_a`,
    `trailer_b`, `shots_a`, `shots_b`, shots numbered from 1), up to `shots_per_pair` of its
    matched keyframes from each trailer, decoded again from their sources. None when no pair
    could be decoded."""
    images, times, labels = [], [], []
    decoded: dict[str, Any] = {}
    for p in pairs:
        try:
            for tid in (p["trailer_a"], p["trailer_b"]):
                if tid not in decoded:
                    path, cfg = source_of(store_path, tid, base)
                    decoded[tid] = decode(path, on_cpu(cfg))
        except Exception as e:       # a courtesy picture: the tables are already written
            log.warning("no picture of pair %s / %s: %s: %s", p["trailer_a"], p["trailer_b"], type(e).__name__, e)
            continue
        da, db = decoded[p["trailer_a"]], decoded[p["trailer_b"]]
        for sa, sb in list(zip(p["shots_a"], p["shots_b"]))[:shots_per_pair]:
            if sa <= len(da.keyframes) and sb <= len(db.keyframes):
                images += [da.keyframes[sa - 1], db.keyframes[sb - 1]]
                times += [float(da.frame_times[sa - 1]), float(db.frame_times[sb - 1])]
                labels += [f"{p['trailer_a']} shot {sa}", f"{p['trailer_b']} shot {sb}"]
    if not images:
        return None
    figures.save(figures.contact_sheet(np.stack(images), times, "near-duplicate pairs: matched shots side by side",
                                       cols=2 * shots_per_pair, labels=labels), out_png)
    return out_png
