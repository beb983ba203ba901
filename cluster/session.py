"""The one place a process joins or starts Ray: jobs through `init_ray`, benchmarks through
`local_ray` (a fresh private instance per measured block)."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from cluster import env

env.apply()

import ray  # noqa: E402  (after the loopback / telemetry environment above)


def init_ray(num_cpus: int | None = None, progress: bool = True, private: bool = False,
             log_level: int = logging.WARNING) -> None:
    """Join the cluster of `ray job submit` / RAY_ADDRESS, else start an embedded local
    instance on 127.0.0.1 (`private`: always a new local one). `progress`: Ray Data's bars;
    in logs (not a tty) it prints per-operator counts every 10 s instead, and Ray Train
    workers have no tqdm, so their datasets must be created with bars off."""
    if ray.is_initialized():
        return
    address = "" if private else os.environ.get("RAY_ADDRESS", "")
    if address:
        ray.init(address=address, logging_level=log_level)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 _node_ip_address="127.0.0.1", logging_level=log_level)
    ray.data.DataContext.get_current().enable_progress_bars = progress


@contextlib.contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    """A fresh private Ray instance for the block (benchmark runs): Ray only, so a machine
    without MLflow runs it."""
    init_ray(num_cpus, progress=False, private=True, log_level=logging.ERROR)
    try:
        yield
    finally:
        ray.shutdown()
