"""What `jobs/benchmark.py` runs once its flags are read: the suite's defaults (full or
--quick), a work folder, the measurements, the table printed and the JSON written."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

# Sizes of the CPU suite: --quick (CI) checks that every measurement runs, in minutes.
QUICK = {"sizes": [(320, 180)], "seconds": 8, "repeat": 1, "keyframes": 16, "n": 1, "train_trailers": 32,
         "ray_trailers": 24, "ray_epochs": 0}
FULL = {"sizes": [(640, 360), (1280, 720)], "seconds": 60, "repeat": 2, "keyframes": 64, "n": 8,
        "train_trailers": 512, "ray_trailers": 400, "ray_epochs": 6}


def _measure(run: Callable[[Any], dict], table: Callable[[dict], str], args: Any, out: str) -> int:
    t0 = time.time()
    res = run(args)
    res["wall_s"] = time.time() - t0
    print("\n" + table(res))
    Path(out).write_text(json.dumps(res, indent=2, default=str))
    print(f"\nwritten: {out} ({res['wall_s']:.0f} s)")
    return 0


def cpu_suite(a: argparse.Namespace) -> int:
    """Every featurizer and training stage against its limit (`benchmarks.suite`)."""
    from benchmarks import suite  # lazy: Ray, torch and MLflow (7 s); --help answers without them
    for k, v in (QUICK if a.quick else FULL).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.quick:
        a.backbone = "resnet18"
    with tempfile.TemporaryDirectory(prefix="ctt_bench_") as tmp:
        a.work = a.work or tmp
        return _measure(suite.run, suite.table, a, a.out)


def shots_suite(a: argparse.Namespace) -> int:
    """The shot detectors alone, on real footage and rendered trailers (`benchmarks.suite`)."""
    from benchmarks import suite  # lazy: Ray, torch and MLflow; --help answers without them
    if a.repeat is None:
        a.repeat = (QUICK if a.quick else FULL)["repeat"]
    with tempfile.TemporaryDirectory(prefix="ctt_shots_") as tmp:
        a.work = a.work or tmp
        return _measure(suite.run_shots, suite.table, a, a.out)


def gpu_suite(a: argparse.Namespace) -> int:
    """The accelerator's claims (`benchmarks.gpu_suite`); on CPU it runs too, smaller."""
    from benchmarks import gpu_suite as g  # lazy: torch (seconds); --help answers without it
    skip = [s for s in a.skip.split(",") if s]
    unknown = set(skip) - set(g.SECTIONS)
    if unknown:
        print(f"benchmark: --skip: unknown section(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ctt_gpu_") as tmp:
        args = (g.GpuSuiteArgs.quick if a.quick else g.GpuSuiteArgs)(work=a.work or tmp, skip=skip)
        return _measure(g.run, g.table, args, a.out)
