"""Several cuts of one synthetic film, with ground truth, for the near-duplicate finder.

A film is a plan of shots, each drawn from its own seed, so any cut renders a shot the same
way. Another cut of the film takes its shots in another order, drops some, adds a few new
ones, opens on its own title card, and is encoded at another size (sometimes letterboxed)
with another codec, as teasers, trailers and re-uploads of one film are. Films of the same
genres drawn from other seeds are the look-alikes a finder must not join.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd

from featurize.sample_trailers import STYLES, SampleSpec, Style, _jitter, _render_audio, _render_shot

# (width, height, letterbox, codec) of the encodings a cut is made in; the film's own is the first
ENCODINGS = ((192, 108, False, "libx264"), (160, 90, False, "mpeg4"), (256, 144, False, "libx264"),
             (192, 144, True, "mpeg4"))


@dataclass(frozen=True)
class PlannedShot:
    style: Style
    frames: int
    seed: int


def film_plan(genres: list[str], seed: int, spec: SampleSpec, shots: int = 10) -> list[PlannedShot]:
    """The shots of one film (about `shots` of them), each with its own drawing seed."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for _ in range(shots):
        base = STYLES[genres[rng.integers(len(genres))]] if genres else STYLES["drama"]
        st = _jitter(rng, base, False)
        n = max(int(spec.fps * 0.6), int(rng.exponential(st.shot_s) * spec.fps + spec.fps * 0.4))
        out.append(PlannedShot(st, min(n, 3 * spec.fps), int(rng.integers(2**31))))
    return out


def recut(plan: list[PlannedShot], cut_seed: int, genres: list[str], spec: SampleSpec) -> list[PlannedShot]:
    """Another cut: a title card, then the film's shots reordered, about a fifth dropped, one
    or two new ones added."""
    rng = np.random.default_rng([cut_seed, 11])
    keep = [plan[i] for i in sorted(rng.choice(len(plan), max(2, round(len(plan) * rng.uniform(0.7, 0.9))),
                                               replace=False))]
    extra = film_plan(genres, int(rng.integers(2**31)), spec, shots=int(rng.integers(1, 3)))
    shots = keep + extra
    order = rng.permutation(len(shots))
    return [title_card(int(rng.integers(2**31)), spec)] + [shots[i] for i in order]


def title_card(seed: int, spec: SampleSpec) -> PlannedShot:
    """A dark, still shot: what a cut's title card looks like to a colour-based model."""
    return PlannedShot(Style(0.0, 0.0, 0.08, 0.05, 0.0, 0.0, 1.0, 220.0, 60.0, 0.0), spec.fps, seed)


def _shot_frames(shot: PlannedShot, spec: SampleSpec) -> np.ndarray:
    rng = np.random.default_rng(shot.seed)
    frames = _render_shot(rng, shot.style, shot.frames, spec.width, spec.height)
    if shot.style.sat == 0.0:                  # a title card: bright blocks of "text" on the dark frame
        h, w = spec.height, spec.width
        for _ in range(int(rng.integers(2, 5))):
            y, x = int(rng.integers(h // 4, 3 * h // 4)), int(rng.integers(w // 8, w // 2))
            frames[:, y:y + max(2, h // 14), x:x + int(rng.integers(w // 6, w // 3))] = 230
    return frames


def render_cut(path: str | Path, shots: list[PlannedShot], spec: SampleSpec, encoding: int = 0) -> None:
    """Write one cut of a film: its shots drawn at the film's size, scaled (and letterboxed)
    to the encoding's, with each shot's sound."""
    width, height, letterbox, codec = ENCODINGS[encoding % len(ENCODINGS)]
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream(codec, rate=spec.fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=spec.sample_rate, layout="mono") if spec.audio else None
        audio = []
        for shot in shots:
            frames = _shot_frames(shot, spec)
            if letterbox:                      # the film's 16:9 picture inside a 4:3 frame
                bar = (spec.width * height // width - spec.height) // 2
                frames = np.pad(frames, ((0, 0), (max(0, bar),) * 2, (0, 0), (0, 0)))
            for img in frames:
                frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(width=width, height=height)
                for pkt in vs.encode(frame):
                    out.mux(pkt)
            if aus is not None:
                audio.append(_render_audio(np.random.default_rng([shot.seed, 1]), shot.style,
                                           len(frames) / spec.fps, spec.sample_rate))
        for pkt in vs.encode():
            out.mux(pkt)
        if aus is not None:
            y = np.concatenate(audio)
            for i in range(0, len(y), 1024):
                frame = av.AudioFrame.from_ndarray(y[None, i:i + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = spec.sample_rate, i
                for pkt in aus.encode(frame):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)


def make_cuts(out: str | Path, films: list[list[str]], cuts: list[int], seed: int = 0,
              spec: SampleSpec = SampleSpec(), prefix: str = "film", film_shots: int = 10) -> pd.DataFrame:
    """Render `cuts[i]` cuts of film i (of genres `films[i]`) into `out/videos`; returns their
    manifest rows with a `film` column, the ground truth (the first cut is the film's own).
    `film_shots`: about how many shots each film has."""
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for f, (genres, n) in enumerate(zip(films, cuts)):
        plan = film_plan(genres, seed * 1000 + f, spec, film_shots)
        for c in range(n):
            shots = plan if c == 0 else recut(plan, seed * 1000 + f * 10 + c, genres, spec)
            tid = f"{prefix}{f:03d}_cut{c}"
            render_cut(out / "videos" / f"{tid}.mp4", shots, spec, encoding=c)
            rows.append({"trailer_id": tid, "path": f"videos/{tid}.mp4", "genres": "|".join(genres),
                         "film": f"{prefix}{f:03d}"})
    return pd.DataFrame(rows)
