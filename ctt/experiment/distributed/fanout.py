"""A task fan-out on the cluster: the SVM baselines' grid, one task per grid point and genre."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Sequence

import ray
from tqdm.auto import tqdm


def ray_map(fn: Callable[..., Any], items: Sequence[Any], shared: Any, num_cpus: float, desc: str) -> list[Any]:
    """[fn(shared, *item) for item in items] as Ray tasks, `shared` put in the object store
    once. Progress: a bar in a terminal; in logs, a line every 10 % of the tasks (or 10 s)."""
    task = ray.remote(num_cpus=num_cpus)(fn)
    ref = ray.put(shared)
    refs = [task.remote(ref, *item) for item in items]
    bar = tqdm(total=len(refs), desc=desc, unit="task", disable=not sys.stderr.isatty())
    pending, t0, shown = list(refs), time.time(), 0
    while pending:
        _, pending = ray.wait(pending, num_returns=min(len(pending), max(1, len(refs) // 10)), timeout=10)
        done = len(refs) - len(pending)
        if done > shown and bar.disable:
            print(f"{desc}: {done}/{len(refs)} tasks ({time.time() - t0:.0f} s)", flush=True)
        bar.update(done - shown)
        shown = done
    bar.close()
    return ray.get(refs)
