"""Synthetic trailers whose look and sound depend on their genres (for the demo and tests).

A trailer is a sequence of shots. Each shot takes the style of one of the trailer's
genres (or, as a nuisance, of no genre): colour, lighting key, texture, motion,
shot length (cut rate) and a sound (tone, beat tempo, noise). Jitter on every style
parameter keeps the task learnable but not trivial. H.264 + AAC in MP4 via PyAV.
"""
from __future__ import annotations

import colorsys
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd

from featurize.genres import sample_labels
from featurize.histograms import hsv_histogram, intersection


@dataclass(frozen=True)
class Style:
    hue: float          # 0..1
    sat: float
    key: float          # lighting key: mean brightness 0..1
    grain: float        # texture contrast
    stripes: float      # 0: smooth noise, >0: stripe frequency
    motion: float       # pan speed in pixels per frame at 108p
    shot_s: float       # mean shot length in seconds
    tone_hz: float
    bpm: float
    noise: float        # audio noise level


STYLES: dict[str, Style] = {
    "action":    Style(0.05, 0.85, 0.60, 0.35, 0.0, 6.0, 0.8, 110, 160, 0.30),
    "adventure": Style(0.33, 0.70, 0.65, 0.20, 0.0, 3.5, 1.5, 330, 110, 0.08),
    "comedy":    Style(0.15, 0.90, 0.88, 0.10, 0.0, 2.0, 2.0, 523, 128, 0.03),
    "crime":     Style(0.62, 0.30, 0.40, 0.25, 0.0, 1.5, 1.8, 196, 96, 0.10),
    "drama":     Style(0.08, 0.40, 0.55, 0.08, 0.0, 0.5, 3.0, 262, 70, 0.02),
    "horror":    Style(0.80, 0.55, 0.15, 0.40, 0.0, 1.0, 2.5, 55, 60, 0.25),
    "romance":   Style(0.92, 0.50, 0.80, 0.05, 0.0, 0.8, 2.5, 440, 80, 0.02),
    "scifi":     Style(0.50, 0.80, 0.50, 0.20, 9.0, 2.5, 1.5, 880, 120, 0.06),
    "thriller":  Style(0.45, 0.35, 0.30, 0.30, 0.0, 1.5, 1.2, 146, 140, 0.15),
}
NEUTRAL_SHARE = 0.25


@dataclass
class SampleSpec:
    width: int = 192
    height: int = 108
    fps: int = 12
    min_seconds: float = 8.0
    max_seconds: float = 14.0
    sample_rate: int = 44100
    audio: bool = True
    gradual: float = 0.0           # share of shot changes drawn as gradual transitions (dissolves and
    transition_s: float = 0.5      # fades through black, half each) of about this length; 0: hard cuts only


@dataclass(frozen=True)
class Transition:
    """A rendered shot change: `kind` cut (start == end: the new shot's first frame), dissolve
    or fade; start..end the frames (inclusive) that mix the two shots."""
    kind: str
    start: int
    end: int


def _mix(prev: np.ndarray, new: np.ndarray, kind: str) -> np.ndarray:
    """k frames of a transition from the last k of `prev` to the first k of `new`: a cross-fade,
    or a fade to black and up again."""
    k = len(prev)
    a = (np.arange(1, k + 1, dtype=np.float32) / (k + 1))[:, None, None, None]
    p, n = prev.astype(np.float32), new.astype(np.float32)
    if kind == "dissolve":
        out = (1 - a) * p + a * n
    else:
        out = np.where(a < 0.5, p * (1 - 2 * a), n * (2 * a - 1))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _jitter(rng: np.random.Generator, base: Style, neutral: bool) -> Style:
    if neutral:
        return Style(rng.random(), rng.uniform(0.1, 0.9), rng.uniform(0.2, 0.8), rng.uniform(0, 0.3),
                     0.0, rng.uniform(0, 4), rng.uniform(0.8, 3.0), rng.uniform(80, 900),
                     rng.uniform(60, 160), rng.uniform(0, 0.2))
    return Style(
        hue=(base.hue + rng.normal(0, 0.04)) % 1.0,
        sat=float(np.clip(base.sat + rng.normal(0, 0.1), 0.05, 1)),
        key=float(np.clip(base.key + rng.normal(0, 0.08), 0.05, 0.95)),
        grain=float(np.clip(base.grain + rng.normal(0, 0.05), 0, 0.6)),
        stripes=base.stripes * rng.uniform(0.7, 1.3),
        motion=max(0.0, base.motion * rng.uniform(0.6, 1.4)),
        shot_s=base.shot_s,
        tone_hz=base.tone_hz * rng.choice([1.0, 1.25, 1.5, 2.0]),
        bpm=base.bpm * rng.uniform(0.9, 1.1),
        noise=float(np.clip(base.noise + rng.normal(0, 0.03), 0, 0.5)),
    )


def _distinct(a: Style | None, b: Style) -> bool:
    """Consecutive shots must differ enough in colour or key for a visible cut."""
    if a is None:
        return True
    dh = min(abs(a.hue - b.hue), 1 - abs(a.hue - b.hue))
    return dh > 0.12 or abs(a.key - b.key) > 0.3 or abs(a.sat - b.sat) > 0.4


def _shot_canvas(rng: np.random.Generator, st: Style, w: int, h: int) -> np.ndarray:
    """(h, 2w, 3) float32 RGB in [0, 1]: gradient in the style's colour plus texture."""
    r, g, b = colorsys.hsv_to_rgb(st.hue, st.sat, 1.0)
    base = np.array([r, g, b], np.float32)
    ramp = np.linspace(1.25, 0.75, h, dtype=np.float32)[:, None, None]
    canvas = np.ones((h, 2 * w, 1), np.float32) * ramp * st.key * base
    if st.stripes > 0:
        x = np.arange(2 * w, dtype=np.float32)
        tex = 0.5 + 0.5 * np.sin(2 * np.pi * st.stripes * x / w)[None, :, None]
    else:
        coarse = rng.random((max(2, h // 12), max(2, 2 * w // 12), 1)).astype(np.float32)
        tex = np.kron(coarse, np.ones((12, 12, 1), np.float32))[:h, :2 * w]
        tex = np.pad(tex, ((0, h - tex.shape[0]), (0, 2 * w - tex.shape[1]), (0, 0)), mode="edge")
    canvas = canvas * (1 - st.grain + 2 * st.grain * tex)
    return np.clip(canvas, 0, 1)


def _render_shot(rng: np.random.Generator, st: Style, n: int, w: int, h: int) -> np.ndarray:
    canvas = _shot_canvas(rng, st, w, h)
    frames = np.empty((n, h, w, 3), np.uint8)
    pos = rng.uniform([0, 0], [w, h])
    vel = rng.normal(0, 1, 2) * (1 + st.motion)
    rad = rng.uniform(h * 0.08, h * 0.2)
    comp = np.array(colorsys.hsv_to_rgb((st.hue + 0.5) % 1, st.sat, min(1, st.key + 0.3)), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        shift = int(i * st.motion) % w
        img = canvas[:, shift:shift + w].copy()
        pos = pos + vel
        for d, lim in ((0, w), (1, h)):
            if not 0 <= pos[d] <= lim:
                vel[d] = -vel[d]
                pos[d] = np.clip(pos[d], 0, lim)
        disc = (xx - pos[0]) ** 2 + (yy - pos[1]) ** 2 < rad ** 2
        img[disc] = comp
        frames[i] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return frames


def _render_audio(rng: np.random.Generator, st: Style, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr), dtype=np.float32) / sr
    tone = sum(np.sin(2 * np.pi * st.tone_hz * k * t) / k for k in (1, 2, 3))
    beat = (np.sin(np.pi * t * st.bpm / 60.0) ** 16).astype(np.float32)
    y = 0.25 * tone * (0.4 + 0.6 * beat) + st.noise * rng.normal(0, 1, len(t)) * beat
    return np.clip(0.5 * y, -1, 1).astype(np.float32)


def render_trailer(path: str | Path, genres: list[str], seed: int, spec: SampleSpec = SampleSpec()) -> list[int]:
    """Write one trailer; returns the frame index where each shot starts (ground truth)."""
    return [0] + [t.start for t in render_with_transitions(path, genres, seed, spec)]


def render_with_transitions(path: str | Path, genres: list[str], seed: int,
                            spec: SampleSpec = SampleSpec()) -> list[Transition]:
    """Write one trailer; returns its shot changes (ground truth for shot detectors). The
    transitions draw from their own random stream: with `gradual=0` a seed renders the
    same trailer as before transitions existed."""
    rng = np.random.default_rng(seed)
    audio_rng = np.random.default_rng([seed, 1])
    mix_rng = np.random.default_rng([seed, 2])
    n_total = int(rng.uniform(spec.min_seconds, spec.max_seconds) * spec.fps)
    hold = max(2, int(round(spec.transition_s * spec.fps)))
    prev_style, prev_hist = None, None
    done = 0
    changes: list[Transition] = []
    pending = np.zeros((0, spec.height, spec.width, 3), np.uint8)   # the last shot's frames held for a mix
    pending_kind = ""
    audio: list[np.ndarray] = []
    with av.open(str(path), "w", format="mp4") as out:     # shots are encoded as they are drawn:
        vs = out.add_stream("libx264", rate=spec.fps, options={"crf": "23", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = spec.width, spec.height, "yuv420p"   # memory holds one shot
        aus = out.add_stream("aac", rate=spec.sample_rate, layout="mono") if spec.audio else None

        def encode(frames: np.ndarray) -> None:
            for img in frames:
                for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(pkt)

        while done < n_total:
            neutral = rng.random() < NEUTRAL_SHARE or not genres
            base = STYLES[genres[rng.integers(len(genres))]] if genres else STYLES["drama"]
            for attempt in range(30):   # a cut must be visible: redraw a shot that looks like the last one,
                st = _jitter(rng, base, neutral or attempt >= 10)   # then fall back to a neutral shot
                n = max(int(spec.fps * 0.6), int(rng.exponential(st.shot_s) * spec.fps + spec.fps * 0.4))
                n = min(n, n_total - done)
                frames = _render_shot(rng, st, n, spec.width, spec.height)
                if prev_hist is None or (_distinct(prev_style, st)
                                         and intersection(prev_hist, hsv_histogram(frames[0])) < 0.5):
                    break
            first = done
            if prev_hist is not None:
                k = min(len(pending), len(frames) // 2) if pending_kind else 0
                encode(pending[:len(pending) - k])                    # held frames the new shot is too short for
                if k:
                    first = done - k
                    encode(_mix(pending[len(pending) - k:], frames[:k], pending_kind))
                    changes.append(Transition(pending_kind, first, first + k - 1))
                else:
                    changes.append(Transition("cut", done, done))
                frames = frames[k:]
            pending_kind = ""
            if spec.gradual and mix_rng.random() < spec.gradual:
                pending_kind = "dissolve" if mix_rng.random() < 0.5 else "fade"
            held = min(hold, len(frames) // 2) if pending_kind else 0
            encode(frames[:len(frames) - held])
            pending = frames[len(frames) - held:]
            if aus is not None:
                audio.append(_render_audio(audio_rng, st, len(frames) / spec.fps, spec.sample_rate))
            prev_style, prev_hist = st, hsv_histogram(frames[-1])
            done += len(frames)
        encode(pending)
        for pkt in vs.encode():
            out.mux(pkt)
        if aus is not None:
            y = np.concatenate(audio)
            step = 1024
            for i in range(0, len(y), step):
                frame = av.AudioFrame.from_ndarray(y[None, i:i + step], format="fltp", layout="mono")
                frame.sample_rate = spec.sample_rate
                frame.pts = i
                for pkt in aus.encode(frame):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)
    return changes


def _split_of(i: int, order: np.ndarray, n: int) -> str:
    rank = int(order[i])
    if rank < round(0.714 * n):      # LMTD-9: 2861 / 374 / 772 of 4007
        return "train"
    return "val" if rank < round(0.807 * n) else "test"


def _render_job(args: tuple) -> None:
    path, genres, seed, spec = args
    render_trailer(path, genres, seed, spec)


def make_samples(out: str | Path, n: int, seed: int = 0, spec: SampleSpec = SampleSpec(),
                 workers: int | None = None) -> pd.DataFrame:
    """Render n trailers into `out` and write `out/manifest.csv` (the manifest format, docs/contract.md); deterministic by seed."""
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = sample_labels(rng, n)
    order = rng.permutation(n)
    seeds = rng.integers(0, 2**31, n)
    rows, jobs = [], []
    for i in range(n):
        tid = f"synth{i:05d}"
        rel = f"videos/{tid}.mp4"
        rows.append({"trailer_id": tid, "path": rel, "genres": "|".join(labels[i]), "split": _split_of(i, order, n)})
        jobs.append((str(out / rel), labels[i], int(seeds[i]), spec))
    workers = workers or os.cpu_count() or 1
    if workers > 1 and n > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_render_job, jobs))
    else:
        for j in jobs:
            _render_job(j)
    df = pd.DataFrame(rows)
    df.to_csv(out / "manifest.csv", index=False)
    return df

