"""Shot boundaries from colour-histogram comparisons, and one keyframe per shot.

The paper's rule compares the HSV histograms of consecutive frames (section 3.1). On real
footage that alone splits shots at every flash, misses dissolves (each frame differs only
a little from the one before) and cannot see a jump cut whose colours stay the same, so the
comparisons here are made robust to each, staying histogram comparisons cheap enough for
the decode pass (`ShotRule`):

  - a change is judged against the changes around it at the same time distance (its
    context), as in twin comparison: a cut is a frame change `cut_ratio` times larger than
    its neighbours' (or above `hard_change`), a gradual transition a change between frames
    `2 * span` apart `gradual_ratio` times larger than the change over the same distance
    on either side of it, for each span in `spans`; a pan or a zoom changes its context
    as much as itself and is no boundary;
  - every comparison across a boundary is the smallest of those between frames up to
    `flash_frames` further out on either side, so a short bright excursion that returns
    to the same shot (a flash, a muzzle blast) is bridged and is no boundary;
  - a cut is also looked for in the histograms of a grid x grid split of the frame
    (`region_grid`): a jump cut (two moments of one shot, reframed) keeps the colours of
    the whole frame but moves them between regions;
  - candidates are kept greedily by strength, cuts first, none within the sum of their
    spans of a stronger one (`min_gap` at least), and a gradual transition's boundary is
    placed at its midpoint: the first frame nearer the shot after than the one before;
  - a fade through black changes the frame twice, going out and coming in: a stretch of at
    most `black_gap` frames between two boundaries whose frames are on average
    `black_share` black, one of them all but black, is no shot of its own but joins the
    next, so the fade is one boundary and no black keyframe is kept.

`ShotTracker` runs the rule online while a video decodes, deciding each boundary once every
frame it depends on has arrived, and holds a bounded set of keyframe candidates per open
stretch of video; the keyframe is the candidate nearest each shot's centre.
"""
from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import numba
import numpy as np

from featurize.histograms import change, changes_at


@dataclass(frozen=True)
class ShotRule:
    """The boundary rule's settings (`ShotConfig` holds them under the same names)."""
    cut_ratio: float = 3.0           # a cut: the frame change is this many times its neighbours' mean ...
    min_change: float = 0.15         # ... and at least this (1 - histogram intersection)
    hard_change: float = 0.6         # a frame change at least this is a cut whatever its context
    context: int = 3                 # frames either side whose changes a cut is compared with
    flash_frames: int = 4            # an excursion this short that returns to the same shot is no cut
    spans: tuple[int, ...] = (4, 8, 12)   # gradual transitions: frames compared span before and after
    gradual_ratio: float = 2.0       # ... the change across is this many times the change either side ...
    gradual_change: float = 0.35     # ... and at least this
    region_grid: int = 3             # jump cuts: histograms of a grid x grid split (1: off)
    region_ratio: float = 2.5
    region_change: float = 0.25
    min_gap: int = 4                 # boundaries closer than this are one
    black_gap: int = 24              # a fade through black is one boundary: a shot this short (frames) ...
    black_share: float = 0.5         # ... whose frames are on average this black joins the next (0: off)

    @property
    def cut_lag(self) -> int:
        """Frames after a cut by which it is decided: its comparisons' reach, the +-half of
        the peak test and the gap to rival cuts."""
        reach, half = max(self.flash_frames, self.context), max(1, self.flash_frames)
        return reach + half + max(self.min_gap, 2) + 1

    @classmethod
    def of(cls, settings: Any) -> "ShotRule":
        """The rule from an object holding its settings under the same names (`ShotConfig`)."""
        values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)}
        return cls(**values | {"spans": tuple(int(s) for s in values["spans"])})


class _Series:
    """A growing float64 array (amortised appends)."""

    def __init__(self, zeros: int = 0):
        self._data, self.size = np.zeros(max(1024, zeros)), zeros

    @property
    def values(self) -> np.ndarray:
        return self._data[:self.size]

    def extend(self, values: np.ndarray) -> None:
        while self.size + len(values) > len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.size:self.size + len(values)] = values
        self.size += len(values)


GRADUAL_STEP = 96          # frames between two runs of the gradual scales
BLACK_FRAME = 0.95         # a black gap's darkest frame has this share of black samples: a fade passes
                           # through black, a dark night shot seldom does


class _Rows:
    """Histograms of the frames still to be read, in a buffer reused as old rows are dropped."""

    def __init__(self):
        self._data: np.ndarray | None = None
        self.size = 0

    @property
    def values(self) -> np.ndarray:
        return self._data[:self.size]

    def extend(self, rows: np.ndarray) -> None:
        if self._data is None:
            self._data = np.zeros((max(512, 2 * len(rows)), *rows.shape[1:]), np.float32)
        while self.size + len(rows) > len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.size:self.size + len(rows)] = rows
        self.size += len(rows)

    def drop(self, k: int) -> None:
        """Forget the first k rows."""
        self._data[:self.size - k] = self._data[k:self.size]
        self.size -= k


@dataclass
class _Measure:
    """One comparison scale of one histogram kind: the change across each position (the new
    shot starts at c), its context, and the position of each candidate it found."""
    span: int                        # 1: a cut between frames c - 1 and c
    regional: bool
    ratio: float
    least: float
    hard: float                      # a change this large needs no context (inf: none)
    cross: "_Series" = field(default_factory=lambda: _Series(1))       # from position 0 (position 0: 0)
    context: "_Series" = field(default_factory=lambda: _Series(1))
    done: int = 1                    # positions below this have cross and context
    tested: int = 1                  # positions below this were tested for a candidate

    def reach(self, rule: ShotRule) -> int:
        s, f = self.span, rule.flash_frames
        return max(f, rule.context) if s == 1 else 3 * s + f - 2

    def half(self, rule: ShotRule) -> int:
        return max(self.span, rule.flash_frames)

    def distances(self, flash: int) -> set[int]:
        """How far apart the frames it compares are."""
        base = 2 * self.span - 1
        return {base, base + flash, base + 2 * flash} | ({1} if self.span == 1 else set())


@numba.njit(cache=True, nogil=True)
def _cross_context(near: np.ndarray, far: np.ndarray, farthest: np.ndarray, c0: int, s: int, f: int, w: int,
                   n: int, cross: np.ndarray, context: np.ndarray) -> None:
    """cross[i], context[i] of position c = c0 + i for the scale of span s (1: cuts), from the
    kept comparisons at distances d = 2s - 1, d + f and d + 2f (`near`, `far`, `farthest`:
    entry j compares frame j with frame j - distance, both clipped to [0, n - 1]; a negative
    j reads entry 0).

    cross: the smallest change between frames c - s - o1 and c + s - 1 + o2 over o1, o2 in
    {0, f} (0 before frame s); context: for a cut, the mean frame change at the w positions
    either side (inside the video), itself left out; for a gradual scale, the larger of the
    changes over the same distance just before and just after, each bridged across f frames.
    Equal to the rule written plainly (`tests/shot_reference.py`)."""
    d = 2 * s - 1
    for i in range(len(cross)):
        c = c0 + i
        a, b = max(c + s - 1, 0), max(c + s - 1 + f, 0)
        cross[i] = min(min(near[a], far[a]), min(far[b], farthest[b])) if c - s >= 0 else 0.0
        if s == 1:
            total, count = 0.0, 0
            for j in range(-w, w + 1):
                if j != 0 and 1 <= c + j <= n - 1:
                    total += near[c + j]
                    count += 1
            context[i] = total / max(count, 1)
        else:
            left = min(near[max(c - s, 0)], near[max(c - s - f, 0)])
            right = min(near[max(c + s - 1 + d, 0)], near[max(c + s - 1 + f + d, 0)])
            context[i] = max(left, right)


@numba.njit(cache=True, nogil=True)
def _peaks(cross: np.ndarray, context: np.ndarray, start: int, stop: int, half: int, ratio: float,
           least: float, hard: float) -> np.ndarray:
    """Positions c in [start, stop) whose contrast cross - context is the largest within
    +-half (positions from 1 up to those computed) and whose change is large enough: at
    least `hard`, or at least `least` and `ratio` times its context."""
    out = np.empty(max(stop - start, 0), np.int64)
    k = 0
    for c in range(start, stop):
        x = cross[c]
        if not (x >= hard or (x >= least and x >= ratio * context[c])):
            continue
        con = x - context[c]
        peak = True
        for j in range(max(1, c - half), min(len(cross), c + half + 1)):
            if cross[j] - context[j] > con:
                peak = False
                break
        if peak:
            out[k] = c
            k += 1
    return out[:k]


def _measures(rule: ShotRule, regional: bool) -> list[_Measure]:
    out = [_Measure(1, False, rule.cut_ratio, rule.min_change, rule.hard_change)]
    if regional and rule.region_grid > 1:
        out.append(_Measure(1, True, rule.region_ratio, rule.region_change, np.inf))
    return out + [_Measure(s, False, rule.gradual_ratio, rule.gradual_change, np.inf) for s in rule.spans]


def subsample(n: int, cap: int) -> np.ndarray:
    """Indices of at most `cap` of n items, spread uniformly over time (all when cap <= 0)."""
    if cap <= 0 or n <= cap:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cap)).astype(int))


def shots_from_boundaries(boundaries: list[int], n_frames: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering 0..n_frames."""
    edges = [0] + [b for b in boundaries if 0 < b < n_frames] + [n_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class CandidatePool:
    """Keyframe candidates for a whole trailer, for a detector that finds its shots after the
    decode pass: every `stride`-th frame is kept (from frame 0) (`make` turns it into what is kept), and
    once more than `cap` are held every other one is dropped and the stride doubles, so
    memory stays bounded while the candidates stay evenly spaced over the trailer."""

    def __init__(self, cap: int, stride: int = 1):
        self.cap, self.stride = cap, max(1, stride)
        self.items: list[tuple[int, float, Any]] = []

    def push(self, index: int, time: float, make: Callable[[], Any]) -> None:
        """Frame `index` (decode order, from 0) at `time` seconds; `make` runs only for kept frames."""
        if index % self.stride:
            return
        self.items.append((index, time, make()))
        if len(self.items) > self.cap:
            self.items = self.items[::2]
            self.stride *= 2


@dataclass
class Keyframe:
    index: int          # frame number in decode order
    time: float         # seconds
    shot: tuple[int, int]
    payload: Any        # whatever the caller attached (a decoded frame)


class ShotTracker:
    """The shot rule (`ShotRule`) online over a stream of frames, each given as its histogram
    (and optionally its region histograms) with a payload.

    Each position's comparisons are computed once the frames they read have arrived, each
    candidate is tested once its neighbourhood is known, and a candidate is decided once no
    candidate still to come could suppress it: the result equals the rule run over the whole
    video at once (`tests/shot_reference.py`), however the frames are grouped.

    Keyframes: a cut is decided `cut_lag` frames after it (a dozen), and its shot closes
    then, as if frames came one at a time; the frames held are the open shot's, at most
    `max_candidates` evenly spaced (once full, every other one is dropped and the spacing
    doubles), plus the `cut_lag` newest, so the keyframe is the exact central frame of a
    shot up to `max_candidates` frames long and within half the spacing for longer ones. A
    gradual transition is decided later (its widest span must arrive first, about 2 s); when
    it falls inside a shot already closed, that shot splits in two, each keyframe chosen
    among the `split_candidates` frames held for this. `keep` turns a chosen keyframe's
    payload into what is kept (a decoded frame into a model-size image).
    """

    def __init__(self, rule: ShotRule | None = None, max_candidates: int = 32,
                 keep: Callable[[Any], Any] | None = None, split_candidates: int = 8):
        self.rule = rule or ShotRule()
        self.max_candidates, self.keep, self.split_candidates = max_candidates, keep, split_candidates
        self.recent = self.rule.cut_lag + 1
        self.keyframes: list[Keyframe] = []
        self.boundaries: list[int] = []
        self._n = 0
        self._base = 0                                 # frame index of the first histogram held
        self._g = _Rows()
        self._dark = _Series()                         # each frame's share of black samples (none given: 0)
        self._r: _Rows | None = None
        self._measures: list[_Measure] | None = None
        self._cache: dict[tuple[bool, int], _Series] = {}
        self._pending: list[tuple[float, int, int]] = []    # undecided candidates (strength, placement, span)
        self._ready: list[tuple[int, int]] = []             # decided boundaries: (frame, frames needed to close it)
        self._kept: list[tuple[int, int]] = []              # recently kept candidates (placement, span)
        self._closed: list[tuple[tuple[int, int], Keyframe | None, list]] = []   # shots a gradual boundary may still split
        self._settled: float = 0.0       # no gradual boundary can be decided before this frame any more
        self._shot_start = 0
        self._stride = 1
        self._cands: list[tuple[int, float, Any]] = []
        self._recent: list[tuple[int, float, Any]] = []

    @property
    def similarity(self) -> np.ndarray:
        """For each frame after the first, 1 - the change the cut test reads there (the
        histogram intersection with the frame before, bridged across flashes); complete
        after `finish`."""
        m = self._measures[0] if self._measures else None
        return (1.0 - m.cross.values[1:m.done]).astype(np.float32) if m else np.zeros(0, np.float32)

    def push(self, hist: np.ndarray, time: float, payload: Any, regions: np.ndarray | None = None,
             dark: float | None = None) -> None:
        self.push_many(hist[None], [time], [payload], None if regions is None else regions[None],
                       None if dark is None else np.array([dark]))

    def push_many(self, hists: np.ndarray, times: list[float], payloads: list[Any],
                  regions: np.ndarray | None = None, dark: np.ndarray | None = None) -> None:
        """Frames in decode order: (frames, bins) histograms and, for the jump-cut test,
        (frames, regions, bins) region histograms (the same for every push, or never); for the
        black-gap test, (frames,) shares of black samples (`histograms.dark_share`)."""
        if len(hists) == 0:
            return
        self._dark.extend(np.zeros(len(hists)) if dark is None else np.asarray(dark, np.float64))
        if self._measures is None:
            self._measures = _measures(self.rule, regions is not None)
            self._r = _Rows() if regions is not None else None
        self._g.extend(hists)
        if self._r is not None:
            self._r.extend(regions)
        first, self._n = self._n, self._n + len(hists)
        self._advance(final=False)
        self._n = first
        for time, payload in zip(times, payloads):      # as if the frames came one by one: each boundary
            self._hold(self._n, time, payload)          # closes its shot at the frame that decided it
            self._n += 1
            self._release(self._n)

    def finish(self) -> list[Keyframe]:
        if self._measures is not None:
            self._advance(final=True)
        self._release(None)
        for _, kf, _ in self._closed:    # nothing is left to split them
            self._convert(kf)
        self._closed = []
        if self._n > self._shot_start:
            self._close_shot(self._n)
        self.keyframes.sort(key=lambda k: k.index)
        return self.keyframes

    # ------------------------------------------------------------------ the rule, streamed

    def _fill(self, n: int, measures: list[_Measure], upto: int | None = None) -> None:
        """Every comparison the rule makes is between frames a fixed distance d apart: each
        is computed once, for frame j against frame max(j - d, 0), as frame j arrives; at the
        end (`upto` > n) also for the positions past the last frame the rule reads, with
        both frames clipped to it."""
        upto = n if upto is None else upto
        for regional in (False, True):
            keys = {(regional, d) for m in measures if m.regional == regional for d in m.distances(self.rule.flash_frames)}
            behind: dict[int, list[tuple[bool, int]]] = {}          # keys filled up to the same frame, together
            for key in sorted(keys):
                size = self._cache.setdefault(key, _Series()).size
                if size < upto:
                    behind.setdefault(size, []).append(key)
            x = (self._r if regional else self._g).values if behind else None
            for first, group in behind.items():
                rows = changes_at(x, self._base, [d for _, d in group], first, upto, n)
                for key, row in zip(group, rows):
                    self._cache[key].extend(row)

    def _direct(self, regional: bool, a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
        """The change between frames a[i] and b[i], indices clipped to [0, n - 1]."""
        x = (self._r if regional else self._g).values
        ia = np.minimum(np.maximum(a, 0), n - 1) - self._base
        ib = np.minimum(np.maximum(b, 0), n - 1) - self._base
        return change(x, ia, ib)

    def _compute(self, m: _Measure, stop: int, n: int) -> None:
        """cross and context for positions [m.done, stop), read from the kept comparisons
        (`_fill`; at the end they reach past the last frame, clipped to it)."""
        if stop <= m.done:
            return
        f, base = self.rule.flash_frames, 2 * m.span - 1
        near, far, farthest = (self._cache[(m.regional, d)].values for d in (base, base + f, base + 2 * f))
        cross, context = np.empty(stop - m.done), np.empty(stop - m.done)
        _cross_context(near, far, farthest, m.done, m.span, f, self.rule.context, n, cross, context)
        m.cross.extend(cross)
        m.context.extend(context)
        m.done = stop

    def _test(self, m: _Measure, stop: int, n: int) -> None:
        """Candidate tests for positions [m.tested, stop): the contrast (cross - context) is the
        largest within +-half, and the change is large enough."""
        start = m.tested
        if stop <= start:
            return
        cross, context = m.cross.values, m.context.values
        hits = _peaks(cross[:m.done], context[:m.done], start, stop, m.half(self.rule), m.ratio, m.least, m.hard)
        for i in hits:
            self._pending.append((float(cross[i] - context[i]) + (10.0 if m.span == 1 else 0.0),
                                  self._place(m.span, int(i), n), m.span))
        m.tested = stop

    def _place(self, s: int, c: int, n: int) -> int:
        """A gradual transition's boundary: the first frame between the two compared that is
        nearer the later one."""
        if s == 1:
            return c
        ms = np.arange(c - s + 1, c + s)
        before = self._direct(False, np.full(len(ms), c - s), ms, n)
        after = self._direct(False, ms, np.full(len(ms), c + s - 1), n)
        return int(ms[int(np.argmax(before >= after))])

    def _black_gap(self, a: int, b: int) -> bool:
        """Frames [a, b) are the black between a fade out and a fade in (or a video's opening
        fade in): no shot of their own, they join the next one."""
        r = self.rule
        if not (0 < b - a <= r.black_gap and r.black_share > 0):
            return False
        dark = self._dark.values[a:b]
        return float(dark.mean()) >= r.black_share and float(dark.max()) >= BLACK_FRAME

    def _radius(self, a: int, b: int) -> int:
        return max(self.rule.min_gap, a + b)

    def _advance(self, final: bool) -> None:
        n = self._n
        # Cuts are judged as frames arrive; the gradual scales, decided seconds later anyway,
        # in steps of GRADUAL_STEP frames (the result is the same: decisions wait for them).
        due = [m for m in self._measures if final or m.span == 1 or n - m.done >= GRADUAL_STEP + m.reach(self.rule)]
        self._fill(n, due, n + max(m.reach(self.rule) for m in due) + 2 if final else n)
        for m in due:
            self._compute(m, n if final else max(m.done, n - m.reach(self.rule)), n)
        for m in due:
            half = m.half(self.rule)
            self._test(m, m.done if final else max(m.tested, m.done - half), n)
        frontiers = [(m.span, np.inf if final else m.tested - m.span + 1) for m in self._measures]
        self._decide(frontiers)
        gradual = [f for span, f in frontiers if span > 1] + [p[1] for p in self._pending if p[2] > 1]
        self._settled = min(gradual, default=np.inf)       # no gradual boundary can come before this frame
        widest = max(m.span for m in self._measures)
        keep_from = min([m.done for m in self._measures] + [self._n]) - 3 * widest - self.rule.flash_frames - 2
        keep_from = max(self._base, min(keep_from, min([p[1] for p in self._pending], default=keep_from) - 2 * widest))
        if keep_from - self._base > 256:           # histograms no comparison can read again
            cut = keep_from - self._base
            self._g.drop(cut)
            if self._r is not None:
                self._r.drop(cut)
            self._base = keep_from

    def _decide(self, frontiers: list[tuple[int, float]]) -> None:
        """Greedy suppression, streamed: a candidate is kept when it is the strongest of the
        undecided ones within reach and no candidate still to come could reach it and beat
        it (a measure's future candidates lie at or after its frontier; a gradual one never
        beats a cut). A cut is so decided `cut_lag` frames after it."""
        self._pending = [x for x in self._pending            # beaten by one kept already (a cut decided first)
                         if not any(abs(k - x[1]) <= self._radius(x[2], ks) for k, ks in self._kept)]
        changed = True
        while changed and self._pending:
            changed = False
            for x in sorted(self._pending, reverse=True):
                st, at, s = x
                if any(f - at <= self._radius(s, span) for span, f in frontiers if span == 1 or s > 1):
                    continue
                rivals = [y for y in self._pending if y != x and abs(y[1] - at) <= self._radius(s, y[2])]
                if any(y > x for y in rivals):
                    continue
                self._pending = [y for y in self._pending if y is not x and y not in rivals]
                bisect.insort(self._ready, (at, at + self.rule.cut_lag if s == 1 else self._n))
                self._kept.append((at, s))
                changed = True
                break
        widest = max(span for span, _ in frontiers)
        reach = min(f for _, f in frontiers) - 2 * widest - self.rule.min_gap
        self._kept = [k for k in self._kept if k[0] >= reach]

    def _release(self, n: int | None) -> None:
        """Close the shots whose boundary is decided by frame count `n` (all, when None), in
        order; a gradual boundary inside a shot already closed splits it."""
        while self._ready and (n is None or self._ready[0][1] <= n):
            b, _ = self._ready.pop(0)
            if b > self._shot_start:
                if not self._black_gap(self._shot_start, b):
                    self._close_shot(b)
            else:
                self._split(b)
        if not self._closed:             # the common case, per frame: nothing held for a split
            return
        settled = min([self._settled, *[b for b, _ in self._ready]])
        if any(shot[1] <= settled for shot, _, _ in self._closed):
            for shot, kf, _ in self._closed:
                if shot[1] <= settled:
                    self._convert(kf)
            self._closed = [c for c in self._closed if c[0][1] > settled]

    # ------------------------------------------------------------------ keyframes

    def _hold(self, idx: int, time: float, payload: Any) -> None:
        """The newest frames stay unthinned; older ones join the candidates at the stride."""
        self._recent.append((idx, time, payload))
        if len(self._recent) > self.recent:
            old = self._recent.pop(0)
            if (old[0] - self._shot_start) % self._stride == 0:
                self._cands.append(old)
                if len(self._cands) > self.max_candidates:
                    self._cands = self._cands[::2]
                    self._stride *= 2

    def _keyframe(self, shot: tuple[int, int], held: list, convert: bool = True) -> Keyframe | None:
        """The held frame nearest the shot's centre (earlier on a tie); its payload kept now,
        or, for a shot a gradual boundary may still split, once that is settled (`_convert`),
        so a split costs no conversion of a keyframe it replaces."""
        mine = [c for c in held if shot[0] <= c[0] < shot[1]]
        if not mine:
            return None
        centre = (shot[0] + shot[1] - 1) / 2.0
        idx, time, payload = min(mine, key=lambda c: (abs(c[0] - centre), c[0]))
        kf = Keyframe(idx, time, shot, payload)
        if convert:
            self._convert(kf)
        return kf

    def _convert(self, kf: Keyframe | None) -> None:
        if kf is not None and self.keep is not None:
            kf.payload = self.keep(kf.payload)

    def _close_shot(self, end: int) -> None:
        shot = (self._shot_start, end)
        mine = [c for c in self._cands + self._recent if c[0] < end]
        # a gradual boundary decided later may still split it
        may_split = end > min([self._settled, *[b for b, _ in self._ready]]) and end < self._n
        kf = self._keyframe(shot, mine, convert=not may_split)
        if kf is not None:
            self.keyframes.append(kf)
        if end < self._n:
            bisect.insort(self.boundaries, end)
        if may_split:
            spread = mine[:: max(1, len(mine) // self.split_candidates)]
            self._closed.append((shot, kf, spread))
        self._cands = [c for c in self._cands if c[0] >= end]
        self._recent = [c for c in self._recent if c[0] >= end]
        self._shot_start = end
        while self._stride > 1 and len(self._cands) * 2 <= self.max_candidates // 2:
            self._stride //= 2           # the candidates left for the next stretch are few: tighten

    def _split(self, b: int) -> None:
        """A gradual boundary decided after the shot holding it was closed: two shots, each
        with the kept frame nearest its centre among the few held for this."""
        for i, (shot, kf, held) in enumerate(self._closed):
            if shot[0] < b < shot[1] and not self._black_gap(shot[0], b):
                self.keyframes = [k for k in self.keyframes if k is not kf]
                parts = [(shot[0], b), (b, shot[1])]
                kfs = [self._keyframe(p, held, convert=False) for p in parts]   # converted once settled
                self.keyframes += [k for k in kfs if k is not None]
                bisect.insort(self.boundaries, b)
                self._closed[i:i + 1] = [(p, k, [c for c in held if p[0] <= c[0] < p[1]]) for p, k in zip(parts, kfs)]
                if self._black_gap(b, shot[1]):
                    self._join_next(i + 1)
                return

    def _join_next(self, j: int) -> None:
        """Shot j of those a split may still change is the black of a fade (a gradual boundary
        decided late, at the fade out, split it off): it joins the shot after it, as the rule
        joins such a stretch (`_black_gap`), and its end is no boundary."""
        (b, e), kf, held = self._closed[j]
        if j + 1 < len(self._closed):
            (_, f), after, more = self._closed[j + 1]
            self._closed[j:j + 2] = [((b, f), after, held + more)]
            if after is not None:
                after.shot = (b, f)
        elif self._shot_start == e:          # the shot after it is still open
            self._closed.pop(j)
            self._shot_start = b
        else:
            return
        self.keyframes = [k for k in self.keyframes if k is not kf]
        self.boundaries.remove(e)


def shot_boundaries(hists: np.ndarray, rule: ShotRule | None = None, regions: np.ndarray | None = None,
                    dark: np.ndarray | None = None) -> list[int]:
    """Frame indices where a new shot starts, for a whole video's (frames, bins) histograms."""
    t = ShotTracker(rule)
    t.push_many(np.asarray(hists, np.float32), [0.0] * len(hists), [None] * len(hists), regions, dark)
    t.finish()
    return t.boundaries
