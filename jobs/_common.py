"""What every job shares: the safe environment, the config flags, Ray start-up, exits.

Imported first by every job, before Ray or MLflow: the environment defaults (loopback
only, no telemetry) must be set when those are imported and reach every process Ray
starts. It imports nothing heavy, so `--help` and usage errors (exit 2) answer at once;
each job imports its entry point after parsing its arguments.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys

import yaml

# `python jobs/x.py` puts jobs/ first on sys.path, where jobs/featurize.py would shadow the
# featurize package in this process and in every Ray worker started from it.
_JOBS = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _JOBS]

from cluster import env  # noqa: E402

env.apply()

from ctt.config import JOB_SECTIONS, Config, ConfigError, load_config, sections_of  # noqa: E402

USAGE = 2                # exit code of a usage or config error (docs/contract.md); 1: the job ran and failed

# An override is `section.key=value` (dotted, lower-case names), e.g. train.lr=1e-4: a path such
# as s3://bucket/year=2024/t.mp4 or clips/a=b.mp4 is not one.
OVERRIDE = re.compile(r"[a-z_]+(\.[a-z_0-9]+)+=.*", re.S)


class _Parser(argparse.ArgumentParser):
    """Overrides may come anywhere on the line (`--model ctt-s model.parts=4 --seeds 2`)."""

    def parse_args(self, args=None, namespace=None):
        return self.parse_intermixed_args(args, namespace)


def parser(description: str) -> argparse.ArgumentParser:
    p = _Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML config (see configs/); defaults are the paper's settings")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.max_epochs=5 featurize.backbone.name=resnet18")
    return p


def split_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """Positional arguments -> (inputs, overrides): an argument is an override when it has
    the form of one and is not an existing file or folder."""
    overrides = [a for a in args if OVERRIDE.fullmatch(a) and not os.path.exists(a)]
    return [a for a in args if a not in overrides], overrides


def config_from(args: argparse.Namespace, job: str) -> Config:
    """The job's resolved config; a config error is one line and exit 2, before anything
    starts; --print-config prints the config (the sections the job reads) and exits 0."""
    try:
        cfg = load_config(args.config, args.overrides, JOB_SECTIONS[job])
    except ConfigError as e:
        fail(str(e), USAGE)
    if args.print_config:
        print(yaml.safe_dump(sections_of(cfg, job), sort_keys=False), end="")
        sys.exit(0)
    return cfg


def require(args: argparse.Namespace, *names: str) -> None:
    """The data arguments a job cannot run without, checked after --print-config has had its
    turn (which needs none of them): one line and exit 2 when any is missing."""
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        fail(f"give {' and '.join(missing)} (see --help)", USAGE)


def manifest_or_exit(source: str):
    """The featurize input read and checked before Ray or MLflow start: a path that does not
    exist, a manifest without its columns or with unknown genres is a usage error (exit 2)."""
    from featurize.manifest import ManifestError, read_manifest  # lazy: pandas; --help answers without it
    try:
        return read_manifest(source)
    except (ManifestError, OSError) as e:
        fail(str(e), USAGE)


def store_or_exit(path: str) -> None:
    """A feature store to read: a path with no store there is a usage error (exit 2), before
    Ray or MLflow start."""
    from featurize import store  # lazy: pyarrow; --help answers without it
    try:
        store.require_settings(path)
    except store.NotAStore as e:
        fail(str(e), USAGE)
    except OSError as e:
        fail(f"cannot read the feature store {path}: {e}", USAGE)


def init_ray(num_cpus: int | None = None, progress: bool = True) -> None:
    """Join the cluster of `ray job submit` / RAY_ADDRESS, else start an embedded local instance."""
    from cluster.session import init_ray as start  # lazy: Ray takes 2 s to import; only jobs that reach their work need it
    start(num_cpus, progress)


def fail(msg: str, code: int = 1) -> "None":
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


__all__ = ["USAGE", "config_from", "fail", "init_ray", "manifest_or_exit", "parser", "require", "setup_logging",
           "split_overrides", "store_or_exit"]
