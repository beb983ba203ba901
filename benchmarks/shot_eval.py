"""Shot detectors scored against known transitions (rendered trailers' `Transition`s, or the
real-footage edits of `benchmarks.real_footage`).

A detection is the frame where a detector says a new shot starts. It finds a hard cut at
frame f when it lies within `tol` frames of f, and a gradual transition (start..end) when
it lies inside it or within `tol` of either end; each detection finds at most one
transition and each transition is found at most once. Precision per group counts every
detection that found nothing as a false positive of that group too, so neither group's
precision hides the other's spurious detections. A false positive that falls inside a
known distractor (a flash, a pan, a caption fading in) is also counted against it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

CUTS = ("cut", "jump")                       # jump: two nearby moments of one shot, reframed
GRADUAL = ("dissolve", "fade", "wipe")
GROUPS = {"cut": CUTS, "gradual": GRADUAL, "all": CUTS + GRADUAL}


@dataclass
class ShotScore:
    """Counts over one or more videos; precision, recall and F1 per group or kind from them."""
    found: Counter = field(default_factory=Counter)        # transitions found, per kind
    truth: Counter = field(default_factory=Counter)        # transitions, per kind
    false_positives: int = 0
    distractor_hits: Counter = field(default_factory=Counter)   # false positives inside each distractor kind
    distractors: Counter = field(default_factory=Counter)

    def add(self, other: "ShotScore") -> "ShotScore":
        self.found.update(other.found)
        self.truth.update(other.truth)
        self.distractor_hits.update(other.distractor_hits)
        self.distractors.update(other.distractors)
        self.false_positives += other.false_positives
        return self

    def recall(self, kind: str) -> float | None:
        """Share of one kind's transitions found (None when there were none)."""
        return self.found[kind] / self.truth[kind] if self.truth[kind] else None

    def prf(self, group: str = "all") -> tuple[float, float, float]:
        kinds = GROUPS.get(group, (group,))
        tp = sum(self.found[k] for k in kinds)
        n = sum(self.truth[k] for k in kinds)
        p = tp / (tp + self.false_positives) if tp + self.false_positives else 1.0
        r = tp / n if n else 1.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def row(self) -> dict[str, float | int | None]:
        """The flat numbers a benchmark table shows."""
        out: dict[str, float | int | None] = {
            f"{g}_{m}": v for g in GROUPS for m, v in zip(("precision", "recall", "f1"), self.prf(g))}
        out |= {f"recall_{k}": self.recall(k) for k in sorted(self.truth)}
        out |= {f"false_{k}": self.distractor_hits[k] for k in sorted(self.distractors)}
        out |= {f"n_{k}": self.distractors[k] for k in sorted(self.distractors)}
        return out | {"false_positives": self.false_positives}


def score(truth, detected: list[int], tol: int = 1, distractors=()) -> ShotScore:
    """Match `detected` shot starts (frame indices, the first shot's 0 left out) to `truth`
    (objects with kind, start, end): each transition takes the nearest free detection in its
    window. `distractors` (same shape) are events that are not shot changes."""
    free = sorted(set(int(d) for d in detected if d > 0))
    out = ShotScore()
    for t in sorted(truth, key=lambda t: t.start):
        out.truth[t.kind] += 1
        lo, hi = t.start - tol, t.end + tol
        inside = [d for d in free if lo <= d <= hi]
        if inside:
            mid = (t.start + t.end) / 2
            best = min(inside, key=lambda d: abs(d - mid))
            free.remove(best)
            out.found[t.kind] += 1
    out.false_positives = len(free)
    for d in distractors:
        out.distractors[d.kind] += 1
        out.distractor_hits[d.kind] += sum(d.start - tol <= f <= d.end + tol for f in free)
    return out
