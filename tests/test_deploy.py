"""The deployment files in cluster/ parse, have what their tools require, and agree with
pyproject.toml on versions and with each other on the image."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for d in deps:
        m = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([\w.]+)", d)
        if m:
            pins[m.group(1).lower()] = m.group(3)
    return pins


def _image_tag() -> str:
    text = (ROOT / "cluster/Dockerfile").read_text()
    return re.search(r"docker build -f cluster/Dockerfile -t (\S+) \.", text).group(1)


def test_dockerfile_uses_the_pinned_stack():
    text = (ROOT / "cluster/Dockerfile").read_text()
    pins = _pins()
    base = re.search(r"^FROM rayproject/ray:([\d.]+)-py(\d)(\d+)", text, re.M)
    assert base and base.group(1) == pins["ray"]
    for pkg in ("torch", "torchvision", "ray"):
        assert re.search(rf'"{pkg}(\[[^\]]*\])?=={re.escape(pins[pkg])}"', text), pkg
    assert re.search(r'pip install --no-cache-dir -c constraints.txt -e "?\.(\[[a-z,]+\])?"?\n', text) \
        and "constraints.txt ./" in text
    for folder in ("ctt", "featurize", "jobs", "configs"):
        assert f"COPY --chown=ray:users {folder} " in text


def test_aws_launcher_config():
    cfg = yaml.safe_load((ROOT / "cluster/aws.yaml").read_text())
    for key in ("cluster_name", "provider", "auth", "available_node_types", "head_node_type",
                "head_start_ray_commands", "worker_start_ray_commands", "max_workers"):
        assert key in cfg, key
    assert cfg["provider"]["type"] == "aws" and cfg["provider"]["region"]
    assert cfg["docker"]["image"] == _image_tag()
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types and "GPU" not in types[cfg["head_node_type"]]["resources"]
    gpu = [t for t in types.values() if t["resources"].get("GPU")]
    assert gpu and all(t["min_workers"] == 0 < t["max_workers"] for t in gpu)        # autoscaling GPU group
    assert sum(t.get("max_workers", 0) for n, t in types.items() if n != cfg["head_node_type"]) <= cfg["max_workers"]
    for t in types.values():
        assert t["node_config"]["InstanceType"] and "instance-profile" in t["node_config"]["IamInstanceProfile"]["Arn"]
    assert any("ray start --head" in c for c in cfg["head_start_ray_commands"])
    assert any("ray start --address" in c for c in cfg["worker_start_ray_commands"])


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def _check_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"] == _pins()["ray"]
    head = _containers(spec["headGroupSpec"]["template"])
    assert head and all(c["image"] == _image_tag() for c in head)
    groups = spec["workerGroupSpecs"]
    assert groups
    for g in groups:
        assert g["groupName"] and g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        for c in _containers(g["template"]):
            assert c["image"] == _image_tag()
            assert c["resources"]["limits"]["nvidia.com/gpu"] == g["rayStartParams"]["num-gpus"]


def test_kuberay_raycluster():
    doc = yaml.safe_load((ROOT / "cluster/kuberay/raycluster.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster" and doc["metadata"]["name"]
    _check_cluster_spec(doc["spec"])


def test_kuberay_rayjob():
    doc = yaml.safe_load((ROOT / "cluster/kuberay/rayjob.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    entry = spec["entrypoint"].split()
    assert entry[0] == "python" and entry[1].endswith("jobs/featurize.py")
    config = entry[entry.index("--config") + 1]
    assert (ROOT / config.split("/home/ray/ctt-mmc/")[-1]).exists()            # a config the image holds
    assert entry[entry.index("--input") + 1].startswith("s3://") and entry[entry.index("--output") + 1].startswith("s3://")
    assert "MLFLOW_TRACKING_URI" in yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    _check_cluster_spec(spec["rayClusterSpec"])


def test_constraints_pin_every_dependency_within_its_bounds():
    """constraints.txt holds one exact version per package, the pins of pyproject among them,
    and every dependency of pyproject is pinned there."""
    lines = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    pinned = dict(ln.split("==") for ln in lines)
    assert len(pinned) == len(lines) and all("==" in ln for ln in lines)
    pinned = {k.lower().replace("_", "-"): v for k, v in pinned.items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from packaging.requirements import Requirement
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(dep)
        name = req.name.lower().replace("_", "-")
        assert name in pinned and req.specifier.contains(pinned[name]), (dep, pinned.get(name))
    for pkg, version in _pins().items():
        assert pinned[pkg] == version, pkg


def test_cluster_files_give_training_shared_storage():
    """Every cluster definition points Ray Train at an S3 prefix (CTT_TRAIN_STORAGE)."""
    from ctt.experiment.distributed.checkpoints import STORAGE_ENV
    aws = yaml.safe_load((ROOT / "cluster/aws.yaml").read_text())
    assert any(o.startswith(f"--env {STORAGE_ENV}=s3://") for o in aws["docker"]["run_options"])
    for name, specs in (("raycluster", lambda d: d["spec"]), ("rayjob", lambda d: d["spec"]["rayClusterSpec"])):
        spec = specs(yaml.safe_load((ROOT / f"cluster/kuberay/{name}.yaml").read_text()))
        pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
        for c in (c for p in pods for c in _containers(p)):
            assert {e["name"]: e["value"] for e in c["env"]}[STORAGE_ENV].startswith("s3://"), name


def test_runtime_env_file_is_what_jobs_are_submitted_with():
    """cluster/runtime_env.yaml: telemetry off as in the safe environment, the tracking address to
    set, the local data left out of the upload; the documented submit commands use it."""
    from cluster.env import SAFE_ENV
    doc = yaml.safe_load((ROOT / "cluster/runtime_env.yaml").read_text())
    env = doc["env_vars"]
    assert "MLFLOW_TRACKING_URI" in env and env["PYTHONUNBUFFERED"] == "1"
    for key in ("RAY_USAGE_STATS_ENABLED", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        assert env[key] == SAFE_ENV[key]
    assert {"data/", "mlruns/", ".cluster/"} <= set(doc["excludes"])
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    submits = re.findall(r"ray job submit [^\n`]*", docs)
    assert submits and all(re.search(r"--runtime-env (\$ENV|cluster/runtime_env\.yaml)", c)
                           for c in submits if "--working-dir" in c), submits
    assert "ENV=cluster/runtime_env.yaml" in (ROOT / "docs" / "cluster.md").read_text()
