"""Shared by the experiment tests: the short training settings, a trainer, and readers of
what the jobs printed and logged."""
from __future__ import annotations

import json

LSTM = ["train.max_epochs=4", "train.checkpoint_every=4"]
SHORT = ["resources.num_workers=2", "train.batch_size=16", "train.checkpoint_every=10",
         "tracking.experiment=methods"]


def train_model(store, name, tmp_path, *extra):
    from ctt.config import load_config
    from ctt.experiment.distributed.train_driver import run_training
    cfg = load_config(None, SHORT + [f"model.name={name}", f"tracking.storage_path={tmp_path}", *extra])
    return run_training(str(store), cfg)


def client(url):
    import mlflow
    return mlflow.MlflowClient(url)


def table_row(md: str, section: str, label: str) -> list[str]:
    """The cells of `label`'s row in the first table after the heading `section`."""
    part = md[md.index(section):]
    line = next(ln for ln in part.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def summary(out: str, head: str) -> dict:
    return json.JSONDecoder().raw_decode(out[out.index(head) + len(head):])[0]
