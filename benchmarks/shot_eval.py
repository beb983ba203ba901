"""Shot detectors scored against rendered ground truth (`synthetic.Transition`).

A detection is the frame where a detector says a new shot starts. It finds a hard cut at
frame f when it lies within `tol` frames of f, and a gradual transition (start..end) when
it lies inside it or within `tol` of either end; each detection finds at most one
transition and each transition is found at most once. Precision per kind counts every
detection that found nothing as a false positive of that kind too, so neither kind's
precision hides the other's spurious detections.
"""
from __future__ import annotations

from dataclasses import dataclass, field

GRADUAL = ("dissolve", "fade")


@dataclass
class ShotScore:
    """Counts over one or more trailers; precision, recall and F1 per kind from them."""
    found: dict[str, int] = field(default_factory=lambda: {"cut": 0, "gradual": 0})
    truth: dict[str, int] = field(default_factory=lambda: {"cut": 0, "gradual": 0})
    false_positives: int = 0

    def add(self, other: "ShotScore") -> "ShotScore":
        for k in self.found:
            self.found[k] += other.found[k]
            self.truth[k] += other.truth[k]
        self.false_positives += other.false_positives
        return self

    def prf(self, kind: str = "all") -> tuple[float, float, float]:
        kinds = list(self.found) if kind == "all" else [kind]
        tp = sum(self.found[k] for k in kinds)
        n = sum(self.truth[k] for k in kinds)
        p = tp / (tp + self.false_positives) if tp + self.false_positives else 1.0
        r = tp / n if n else 1.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score(truth, detected: list[int], tol: int = 1) -> ShotScore:
    """Match `detected` shot starts (frame indices, the first shot's 0 left out) to `truth`
    (Transitions): each transition takes the nearest free detection in its window."""
    free = sorted(set(int(d) for d in detected if d > 0))
    out = ShotScore()
    for t in sorted(truth, key=lambda t: t.start):
        kind = "gradual" if t.kind in GRADUAL else "cut"
        out.truth[kind] += 1
        lo, hi = t.start - tol, t.end + tol
        inside = [d for d in free if lo <= d <= hi]
        if inside:
            mid = (t.start + t.end) / 2
            best = min(inside, key=lambda d: abs(d - mid))
            free.remove(best)
            out.found[kind] += 1
    out.false_positives = len(free)
    return out
