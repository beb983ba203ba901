"""From a learned detector's per-frame transition probabilities to shots and keyframes:
a new shot starts after each run of frames above the threshold, and the keyframe
candidate nearest each shot's centre becomes its keyframe."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featurize.shots import subsample
from featurize.timeline import frame_duration
from featurize.video import DecodedTrailer


def shot_starts(probs: np.ndarray, threshold: float = 0.5) -> list[int]:
    """Frame index where each shot starts: 0, then the first frame after each run of frames
    whose transition probability is above `threshold` (the frames of a transition stay with
    the shot before it). The package's `predictions_to_scenes` starts its scenes at the same
    frames, save that a trailer opening on a transition begins its first scene after it."""
    above = np.asarray(probs) > threshold
    ends = np.flatnonzero(above[:-1] & ~above[1:]) + 1
    return [0] + ends.tolist()


@dataclass
class Placement:
    """Where a trailer's keyframes come from once its shots are known."""
    chosen: np.ndarray            # (t,) indices into the candidates, one per shot that holds one
    shot_starts: np.ndarray       # (t,) int32: the first frame of each chosen keyframe's shot
    shot_lengths: np.ndarray      # (t,) float32 frames: the length of each chosen keyframe's shot
    cuts: list[int]               # every shot start after the first


def place(starts: list[int], n_frames: int, candidate_frames: np.ndarray, max_keyframes: int = 0) -> Placement:
    """One keyframe per shot: the candidate nearest the shot's centre (earlier on a tie) among
    those inside it. A shot shorter than the candidates' spacing may hold none and gets no
    keyframe. `max_keyframes` > 0 keeps that many, spread uniformly over time."""
    edges = [s for s in starts if 0 < s < n_frames]
    bounds = np.array([0, *edges, n_frames])
    cand = np.asarray(candidate_frames, np.int64)
    shot_of = np.searchsorted(bounds, cand, side="right") - 1          # the shot each candidate lies in
    centre = (bounds[shot_of] + bounds[shot_of + 1] - 1) / 2.0
    order = np.lexsort((cand, np.abs(cand - centre), shot_of))          # per shot: nearest the centre first
    first = order[np.r_[True, shot_of[order][1:] != shot_of[order][:-1]]] if len(order) else order
    chosen = np.sort(first)
    chosen = chosen[subsample(len(chosen), max_keyframes)]
    shots = shot_of[chosen]
    return Placement(chosen=chosen.astype(np.int64), shot_starts=bounds[shots].astype(np.int32),
                     shot_lengths=(bounds[shots + 1] - bounds[shots]).astype(np.float32), cuts=list(edges))


def find_shots(probs: np.ndarray, threshold: float, n_frames: int, fps: float, candidates: np.ndarray,
               max_keyframes: int = 0) -> tuple[Placement, np.ndarray]:
    """Per-frame transition probabilities -> which candidates become keyframes (`place`), and
    the lengths of their shots in seconds."""
    p = place(shot_starts(probs, threshold), n_frames, candidates, max_keyframes)
    return p, (p.shot_lengths * frame_duration(fps)).astype(np.float32)


def place_shots(d: DecodedTrailer, probs: np.ndarray, threshold: float, max_keyframes: int = 0) -> DecodedTrailer:
    """A decoded trailer whose shots wait for a learned detector -> its final keyframes
    (`find_shots`). `similarity` becomes 1 - probability, the curve the QA plot draws."""
    p, d.shot_lengths_s = find_shots(probs, threshold, d.n_frames, d.fps, d.candidates, max_keyframes)
    d.keyframes, d.frame_times = d.keyframes[p.chosen], d.frame_times[p.chosen]
    d.shot_starts, d.cuts = p.shot_starts.tolist(), p.cuts
    d.similarity = (1.0 - np.asarray(probs, np.float32))
    d.thumbs, d.candidates = None, np.zeros(0, np.int64)
    return d
