"""A trailer file -> its store row, in any process: the decode and split steps the Ray
pipeline runs as tasks and actors, and `extract`, which runs them here for a few files
(a served model featurizing the paths it is sent, with no Ray and no store).

Decoding never raises: a file that cannot be read becomes a row with an error stage,
type and message, which the caller routes to the errors table.
"""
from __future__ import annotations

import dataclasses

import traceback
from typing import Any

import numpy as np
import pyarrow as pa

from featurize import lowlevel, shot_detectors, store
from featurize.audio import spectrograms as audio_spectrograms
from featurize.backbone import FrameEmbedder, feature_dim, keyframe_geometry
from featurize.config import FeaturizeConfig
from featurize.shot_detectors import TransitionModel
from featurize.shot_placement import find_shots, place_shots
from featurize.video import DecodedTrailer, decode_trailer

SILENCE = 1e-4          # peak amplitude below which an audio track counts as silent (-80 dBFS)


def _audio_features(d, stft_in_actor: bool, av: bool = True) -> dict[str, Any]:
    """Spectrograms and the audio descriptors that read them (`av`: the AV baseline's, an
    optional stage); with `stft_in_actor` the raw audio goes to the actors instead, which
    transform it again on their device."""
    silent = d.audio is None or len(d.audio) == 0 or max(float(d.audio.max()), -float(d.audio.min())) < SILENCE
    out: dict[str, Any] = {}
    S = None
    if not silent:
        S, padded = audio_spectrograms(d.audio)
    if not silent and stft_in_actor:
        out["audio"] = d.audio
    elif not silent:
        out.update(spectrograms=store.to_float16(S.reshape(len(S), -1)), audio_padded=padded)
    # Shots still to be found: VLLF waits for them (`place_rows`); these zeros never reach a store.
    v = np.zeros(len(lowlevel.VLLF_NAMES), np.float32) if d.shots_pending else \
        lowlevel.vllf(d.keyframes, d.shot_lengths_s, d.motion)
    both = np.concatenate([v, lowlevel.audio_descriptors(None if silent else d.audio, S)]) if av \
        else np.zeros(0, np.float32)
    return out | {"has_audio": not silent, "sample_rate": d.sample_rate, "audio_codec": d.audio_codec,
                  "vllf": v, "av": both}


def decode_row(row: dict[str, Any], cfg: FeaturizeConfig, stft_in_actor: bool = False,
               node: str = "") -> dict[str, Any]:
    """A manifest row -> a store row without `frames` (the keyframe images instead, for the
    embedder; the raw audio too with `stft_in_actor`), or with the error that stopped it."""
    geometry = keyframe_geometry(cfg.backbone)
    size = geometry.size
    out = store.trailer_row(trailer_id=row["trailer_id"], split=row.get("split", ""),
                            genres=list(row.get("genres", [])), source_path=row["path"]) | {
        "decode_node": node, "error_stage": "", "error_type": "", "error_message": "",
        "keyframes": np.zeros((0, size, size, 3), np.uint8), "audio": np.zeros(0, np.float32)}
    del out["frames"]                                    # the embedder's output
    detector = shot_detectors.get(cfg.shots.detector)
    if not detector.online:                              # what the detector in the embedder reads
        out.update(pending(detector))
    stage = "decode"
    try:
        d = decode_trailer(row["path"], cfg, geometry)
        if d.shots_pending:
            out.update(thumbs=d.thumbs, candidates=d.candidates, motion=d.motion)
        out.update(keyframes=d.keyframes, frame_times=d.frame_times,
                   shot_starts=np.asarray(d.shot_starts, np.int32), duration_s=d.duration_s,
                   n_frames=d.n_frames, fps=d.fps, width=d.width, height=d.height, video_codec=d.video_codec,
                   video_stream=d.video_stream, audio_stream=d.audio_stream, decode_errors=d.decode_errors,
                   frames_lost=d.frames_lost, audio_repaired=d.audio_repaired)
        stage = "audio"
        warnings = list(d.warnings)
        try:
            out.update(_audio_features(d, stft_in_actor, cfg.av))
        except Exception as e:  # noqa: BLE001  audio that breaks the transforms loses the audio, not the trailer
            warnings.append(f"audio dropped: {type(e).__name__}: {e}"[:300])
            out.update(_audio_features(dataclasses.replace(d, audio=None), stft_in_actor, cfg.av), audio_stream=-1)
        out["warnings"] = "; ".join(warnings)
    except Exception as e:  # any unreadable input becomes an errors-table row, never a crash
        _fail(out, stage, e)
    return out


def _fail(row: dict[str, Any], stage: str, e: Exception) -> None:
    row.update(error_stage=stage, error_type=type(e).__name__,
               error_message=(str(e) or traceback.format_exc(limit=1)).strip()[:2000])


PENDING_FIELDS = ("thumbs", "candidates", "motion")


def pending(detector: shot_detectors.ShotDetector) -> dict[str, Any]:
    """A decoded row's fields while its shots wait for a learned detector (`place_rows` drops them)."""
    return {"thumbs": np.zeros((0, *detector.frame_size, 3), np.uint8), "candidates": np.zeros(0, np.int64),
            "motion": 0.0}


def shot_model(cfg: FeaturizeConfig, device: str = "cpu") -> TransitionModel | None:
    """The learned shot detector's model `cfg` asks for, loaded once per process and device;
    None for a detector that runs inside the decode pass (hsv)."""
    detector = shot_detectors.get(cfg.shots.detector)
    return None if detector.online else detector.load(device)


def place_rows(batch: dict[str, Any], model: TransitionModel, cfg: FeaturizeConfig) -> dict[str, Any]:
    """Decoded rows whose shots wait for the detector -> rows with one keyframe per shot, the
    shot starts, and VLLF (whose shot length and colour terms read the keyframes). A row the
    detector fails on fails at stage "shots"."""
    threshold = shot_detectors.get(cfg.shots.detector).threshold(cfg.shots)
    out = {k: list(v) for k, v in batch.items() if k not in PENDING_FIELDS}
    for i in range(len(out["trailer_id"])):
        if out["error_stage"][i]:
            continue
        try:
            p, lengths_s = find_shots(model.probabilities(np.asarray(batch["thumbs"][i])), threshold,
                                      int(out["n_frames"][i]), float(out["fps"][i]), np.asarray(batch["candidates"][i]),
                                      cfg.max_keyframes)
            keyframes = np.asarray(out["keyframes"][i])[p.chosen]
            v = lowlevel.vllf(keyframes, lengths_s, float(batch["motion"][i]))
            av = np.array(out["av"][i], np.float32)
            if len(av):                                  # AV starts with VLLF (lowlevel.AV_NAMES)
                av[:len(v)] = v
            out["keyframes"][i], out["vllf"][i], out["av"][i] = keyframes, v, av
            out["frame_times"][i] = np.asarray(out["frame_times"][i], np.float32)[p.chosen]
            out["shot_starts"][i] = p.shot_starts
        except Exception as e:  # a row the detector cannot read is an errors-table row, never a crash
            row = {"error_stage": "", "error_type": "", "error_message": ""}
            _fail(row, "shots", e)
            for k, v in row.items():
                out[k][i] = v
    return out


def decode(path: str, cfg: FeaturizeConfig, device: str = "cpu", audio: bool = True) -> DecodedTrailer:
    """`decode_trailer` with the shots found and the keyframes chosen, whichever the detector:
    what a store's row was made from (for pictures of it, and the benchmark's shot table)."""
    d = decode_trailer(path, cfg, keyframe_geometry(cfg.backbone), audio=audio)
    if not d.shots_pending:
        return d
    threshold = shot_detectors.get(cfg.shots.detector).threshold(cfg.shots)
    return place_shots(d, shot_model(cfg, device).probabilities(d.thumbs), threshold, cfg.max_keyframes)


def split_batch(batch: dict[str, Any], dim: int) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """An embedded batch -> (complete store rows, errors-table rows). A row holding a NaN or
    an inf anywhere (a backbone gone wrong, say) fails at stage "store": no store keeps one.
    The batch's error columns are updated to match, for the caller's summary."""
    ok, failed = [], []
    for k in ("error_stage", "error_type", "error_message"):
        batch[k] = list(batch[k])
    for i in range(len(batch["trailer_id"])):
        row = None
        if not batch["error_stage"][i]:
            row = store.trailer_row(dim, **{k: batch[k][i] for k in store.COLUMNS if k in batch})
            bad = store.nonfinite_columns(row)
            if bad:
                batch["error_stage"][i], batch["error_type"][i] = "store", store.NonFiniteValue.__name__
                batch["error_message"][i] = f"non-finite values in {', '.join(bad)}"
        if batch["error_stage"][i]:
            failed.append({"trailer_id": batch["trailer_id"][i], "path": batch["source_path"][i],
                           "stage": batch["error_stage"][i], "error_type": batch["error_type"][i],
                           "message": batch["error_message"][i]})
        else:
            ok.append(row)
    return ok, failed


def extract(rows: list[dict[str, Any]], cfg: FeaturizeConfig,
            embedder: FrameEmbedder) -> tuple[pa.Table, list[dict[str, str]]]:
    """Manifest rows (trailer_id, path) -> (their store rows as a table, errors-table rows),
    decoded and embedded in this process, exactly as `jobs/featurize.py` would store them."""
    decoded = [decode_row(r, cfg) for r in rows]
    batch = {k: [d[k] for d in decoded] for k in decoded[0]} if decoded else {"trailer_id": []}
    model = shot_model(cfg, str(embedder.device)) if decoded else None
    if model is not None:
        batch = place_rows(batch, model, cfg)
    if decoded:
        batch = embedder(batch)
    dim = feature_dim(cfg.backbone)
    ok, failed = split_batch(batch, dim) if decoded else ([], [])
    return store.features_table(ok, dim), failed
