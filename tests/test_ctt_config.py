import re
from pathlib import Path

import pytest

from ctt.config import Config, ConfigError, flatten, load_config, to_dict

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


PAPER_TRAINING = {"train.lr": 1e-3, "train.weight_decay": 1e-4, "train.batch_size": 64, "train.max_epochs": 200,
                  "train.patience": 20, "model.dropout": 0.5}


def expected_settings(name: str) -> dict:
    """What a shipped config's file name promises (configs are named by recipe)."""
    if m := re.fullmatch(r"(ctt-[abc])_f(\d+)_n(\d+)", name):
        return {"model.name": m[1], "model.f": int(m[2]), "model.n": int(m[3]), **PAPER_TRAINING}
    if m := re.fullmatch(r"ctt-s_p(\d+)", name):
        return {"model.name": "ctt-s", "model.parts": int(m[1]), "model.test_draws": 10, **PAPER_TRAINING}
    if m := re.fullmatch(r"lstm_h(\d+)", name):
        return {"model.name": "lstm", "model.hidden": int(m[1]), "model.max_steps": 120, **PAPER_TRAINING}
    if m := re.fullmatch(r"featurize_(\w+?)_(imagenet|places365)", name):
        return {"featurize.backbone.name": m[1], "featurize.shots.detector": "hsv",
                "featurize.backbone.weights": "imagenet" if m[2] == "imagenet" else "checkpoint"}
    if name == "featurize_paper_shot_rule":   # the paper's shot rule as written: no context, bridges, spans, regions
        return {"featurize.shots.detector": "hsv", "featurize.shots.cut_ratio": 0.0, "featurize.shots.flash_frames": 0,
                "featurize.shots.spans": [], "featurize.shots.region_grid": 1, "featurize.shots.min_change": 0.25}
    if name == "baselines":
        return {"baseline.C": [0.1, 1.0, 10.0, 100.0, 1000.0], "baseline.kernels": ["linear", "rbf"],
                "baseline.gamma": [round(0.1 * i, 1) for i in range(1, 11)], "baseline.selection": "val"}
    if name == "demo":                        # offline and small: no pretrained weights, said so in its output
        return {"featurize.backbone.weights": "none", "featurize.backbone.name": "resnet18"}
    raise AssertionError(f"configs/{name}.yaml: a name that says no recipe")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_sets_what_its_name_says(path):
    got = flatten(to_dict(load_config(path)))
    want = expected_settings(path.stem)
    assert {k: got[k] for k in want} == want


def test_defaults_are_the_papers():
    c = Config()
    assert (c.model.name, c.model.n, c.model.f, c.model.hidden, c.model.dropout) == ("ctt-c", 256, 3, 256, 0.5)
    assert (c.train.lr, c.train.weight_decay, c.train.batch_size, c.train.max_epochs, c.train.patience) == \
        (1e-3, 1e-4, 64, 200, 20)
    assert (c.featurize.backbone.name, c.featurize.backbone.weights) == ("resnet152", "imagenet")


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  f: 5\ntrain:\n  lr: 0.01\n")
    c = load_config(p, ["train.lr=1e-4", "model.name=ctt-a", "train.materialize=false"])
    assert (c.model.f, c.train.lr, c.model.name, c.train.materialize) == (5, 1e-4, "ctt-a", False)
    assert flatten(to_dict(c))["model.f"] == 5


@pytest.mark.parametrize("bad", ["train.lrr=1", "model.f=three", "model.name=ctt-z", "nokey", "train=1"])
def test_bad_overrides_are_errors(bad):
    with pytest.raises(ConfigError):
        load_config(None, [bad])


@pytest.mark.parametrize("args, inputs, overrides", [
    (["a.mp4", "train.lr=0.1", "clips/"], ["a.mp4", "clips/"], ["train.lr=0.1"]),
    (["s3://bucket/year=2024/t.mp4", "featurize.backbone.name=resnet18"], ["s3://bucket/year=2024/t.mp4"],
     ["featurize.backbone.name=resnet18"]),
    (["x=1.mp4", "model.f=5"], ["x=1.mp4"], ["model.f=5"]),
])
def test_job_arguments_are_inputs_unless_dotted_overrides(args, inputs, overrides):
    from jobs._common import split_overrides
    assert split_overrides(args) == (inputs, overrides)


def test_an_existing_file_named_like_an_override_is_an_input(tmp_path, monkeypatch):
    from jobs._common import split_overrides
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.lr=1").write_text("")
    assert split_overrides(["train.lr=1"]) == (["train.lr=1"], [])


def test_a_ray_job_without_a_tracking_server_is_refused(monkeypatch):
    """Runs would go to a store inside the job's temporary working dir, and be lost."""
    from ctt.experiment.tracking import connection
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", '{"metadata": {"job_submission_id": "raysubmit_x"}}')
    with pytest.raises(connection.TrackingUnavailable, match="a Ray job needs MLFLOW_TRACKING_URI"):
        connection.tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert connection.tracking_uri() == "http://127.0.0.1:1" and connection.context_tags()["ray.job_submission_id"] == "raysubmit_x"
