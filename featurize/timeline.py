"""One increasing timeline out of a stream's raw presentation times."""
from __future__ import annotations

import math


MAX_GAP_S = 5.0         # a forward jump in timestamps longer than this is a discontinuity, not a pause


def frame_duration(fps: float) -> float:
    """Seconds per frame; 25 fps where the stream declares no usable rate."""
    return 1.0 / fps if fps else 1.0 / 25


class Timeline:
    """Raw presentation times -> one increasing timeline that starts at 0 with the stream's
    first item. A timestamp that goes back (joined segments, a clock reset) or leaps ahead
    by more than `max_gap` is a discontinuity: the item is placed right after the previous
    one and later items keep the new offset. Items without a timestamp follow the last."""

    def __init__(self, max_gap: float = MAX_GAP_S):
        self.max_gap = max_gap
        self.first: float | None = None       # raw time of the first item
        self.end = 0.0                        # where the next item is due
        self._shift = 0.0
        self.discontinuities = 0

    def place(self, raw: float | None, duration: float) -> float:
        if raw is None or not math.isfinite(raw):
            t = self.end
        elif self.first is None:                  # the first timestamp: items before it had none
            self.first, self._shift, t = raw - self.end, self.end - raw, self.end
        else:
            t = raw + self._shift
            if t < self.end - max(duration, 1e-6) / 2 or t > self.end + self.max_gap:
                self._shift += self.end - t
                self.discontinuities += 1
                t = self.end
        self.end = max(self.end, t + duration)
        return t
