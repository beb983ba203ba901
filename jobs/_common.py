"""What every job shares: safe environment defaults, the config flags, Ray start-up.

Imported before Ray so its defaults reach every process Ray starts: bind to
loopback for local instances, no usage stats, no MLflow telemetry.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# `python jobs/x.py` puts jobs/ first on sys.path, where jobs/featurize.py would shadow the
# featurize package in this process and in every Ray worker started from it.
_JOBS = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _JOBS]

for _k, _v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "RAY_TRAIN_V2_ENABLED": "1"}.items():
    os.environ.setdefault(_k, _v)

from ctt.config import Config, ConfigError, load_config  # noqa: E402


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML config (see configs/); defaults are the paper's settings")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.max_epochs=5 featurize.backbone.name=resnet18")
    return p


def config_from(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def init_ray(num_cpus: int | None = None, progress: bool = True) -> None:
    """Join the cluster of `ray job submit` / RAY_ADDRESS, else start an embedded local instance."""
    import ray
    if ray.is_initialized():
        return
    # In logs (not a tty) Ray Data prints per-operator counts every 10 s instead of bars.
    # Ray Train workers have no tqdm: their datasets must be created with bars off.
    ray.data.DataContext.get_current().enable_progress_bars = progress
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 _node_ip_address="127.0.0.1", logging_level=logging.WARNING)


def fail(msg: str, code: int = 1) -> "None":
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


__all__ = ["ConfigError", "config_from", "fail", "init_ray", "parser", "setup_logging"]
