"""A local cluster on 127.0.0.1 for the `ray job submit` path: a Ray head (with its
dashboard) and an MLflow tracking server (sqlite backend, artifacts served by the server).

    python -m cluster.local up   [--state .cluster] [--num-cpus N] [--workers K]   # prints the env to use
    python -m cluster.local down [--state .cluster]
    python -m cluster.local env  [--state .cluster]                  # `eval $(...)` in a shell

Each server runs in its own process group, so `down` stops exactly what `up`
started (never other Ray instances on the machine). Tests use the same functions.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from ray.util.state import list_nodes

from cluster.env import SAFE_ENV, free_port

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_ENV = ROOT / "cluster" / "runtime_env.yaml"


def _bin(name: str) -> str:
    cand = Path(sys.executable).with_name(name)
    return str(cand) if cand.exists() else name


def _env() -> dict[str, str]:
    return os.environ | SAFE_ENV


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    """Until the server answers. 401 counts: Ray's dashboard wants its auth token."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # loopback: never via a proxy
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}")
        try:
            with opener.open(url, timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return
            time.sleep(0.5)
        except Exception:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s; see {log}")


def _processes() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()] if os.path.isdir("/proc") else []


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:                     # gone meanwhile, or not ours to read
        return b""


def _raylets(pgid: int) -> set[int]:
    """The raylets in a process group (a Ray node started here)."""
    out = set()
    for p in _processes():
        stat = _read(f"/proc/{p}/stat")
        fields = stat[stat.rfind(b")") + 2:].split()      # after "pid (comm)": state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and _read(f"/proc/{p}/comm").strip() == b"raylet":
            out.add(p)
    return out


def _workers_of(raylets: set[int]) -> list[int]:
    """Ray worker processes started by these raylets: each runs in a process group of its own
    and carries its raylet's pid in RAY_RAYLET_PID."""
    keys = {f"RAY_RAYLET_PID={r}".encode() for r in raylets}
    return [p for p in _processes() if keys & set(_read(f"/proc/{p}/environ").split(b"\0"))] if keys else []


def stop_group(pid: int, timeout: float = 8.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left. A Ray node's workers live in
    their own groups and normally exit with their raylet; one that hangs instead (seen with
    a Ray Train controller) is killed too, so nothing of the node outlives it."""
    raylets = _raylets(pid)
    try:
        _stop(pid, timeout)
    finally:
        for worker in _workers_of(raylets):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)


def _stop(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)      # reap the leader if it is our child: a zombie stays in the group
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.3)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Server:
    pid: int
    url: str
    log: str
    gcs_address: str = ""          # Ray nodes: what `ray.init(address=...)` takes
    node_id: str = ""              # Ray worker nodes: the GCS's id of the node

    def stop(self) -> None:
        stop_group(self.pid)


def _serve(cmd: list[str], log: Path, health_url: str, timeout: float, env: dict[str, str], cwd: Path) -> int:
    """Start a server in its own process group and wait until it answers; its pid."""
    proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=cwd)
    try:
        _wait_http(health_url, timeout, proc, log)
    except Exception:
        stop_group(proc.pid)
        raise
    return proc.pid


def start_mlflow(state: Path, port: int | None = None, timeout: float = 90) -> Server:
    state.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port or free_port()}"
    cmd = [_bin("mlflow"), "server", "--backend-store-uri", f"sqlite:///{state.resolve() / 'mlflow.db'}",
           "--artifacts-destination", str(state.resolve() / "mlartifacts"),
           "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"]
    pid = _serve(cmd, state / "mlflow.log", f"{url}/health", timeout, _env(), state)
    return Server(pid, url, str(state / "mlflow.log"))


def start_model_server(state: Path, model_uri: str, tracking_uri: str, port: int | None = None,
                       timeout: float = 180) -> Server:
    """`mlflow models serve` of a logged model in this environment (no new virtualenv), on
    127.0.0.1; its `url` takes POST /invocations."""
    state.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port or free_port()}"
    cmd = [_bin("mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
           "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1], "-w", "1"]
    env = _env() | {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its uvicorn
    pid = _serve(cmd, state / "model-server.log", f"{url}/ping", timeout, env, state)
    return Server(pid, url, str(state / "model-server.log"))


def ensure_auth_token() -> None:
    """Ray's token auth is on (RAY_AUTH_MODE=token): `ray start --head` wants a token, which
    `ray.init()` would create but `ray start` does not. Make one (~/.ray/auth_token) if missing."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_MODE", "token") == "disabled":
        return
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not path.exists():
        subprocess.run([_bin("ray"), "get-auth-token", "--generate"], env=_env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_ray_head(state: Path, num_cpus: int | None = None, port: int | None = None,
                   dashboard_port: int | None = None, timeout: float = 120,
                   extra_env: dict[str, str] | None = None, object_store_memory: int | None = None) -> Server:
    """`ray start --head --block` in its own process group; url is the dashboard (job API)."""
    state.mkdir(parents=True, exist_ok=True)
    ensure_auth_token()
    port, dashboard_port = port or free_port(), dashboard_port or free_port()
    cmd = [_bin("ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
           "--port", str(port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
           "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
           "--metrics-export-port", str(free_port()), "--min-worker-port", "0", "--max-worker-port", "0",
           "--disable-usage-stats", "--temp-dir", f"/tmp/ray_ctt_{port}"]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if object_store_memory:
        cmd += ["--object-store-memory", str(object_store_memory)]
    env = _env() | (extra_env or {})
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"   # jobs run this interpreter
    url = f"http://127.0.0.1:{dashboard_port}"
    pid = _serve(cmd, state / "ray-head.log", f"{url}/api/version", timeout, env, ROOT)
    return Server(pid, url, str(state / "ray-head.log"), gcs_address=f"127.0.0.1:{port}")


def _wait_node(gcs_address: str, node_name: str, timeout: float, proc: subprocess.Popen, log: Path) -> str:
    """Until the GCS lists the node as alive; its node id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray worker node exited with {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}")
        try:
            nodes = [n for n in list_nodes(address=gcs_address, limit=10_000)
                     if n.node_name == node_name and n.state == "ALIVE"]
        except Exception:       # the head's API not answering yet
            nodes = []
        if nodes:
            return nodes[0].node_id
        time.sleep(0.5)
    raise TimeoutError(f"ray worker node {node_name} did not join {gcs_address} within {timeout:.0f}s; see {log}")


def start_ray_worker(head: Server, state: Path, num_cpus: int | None = None, name: str = "worker",
                     resources: dict[str, float] | None = None, object_store_memory: int | None = None,
                     timeout: float = 120) -> Server:
    """A worker node of the head's cluster (cluster/node.py), in its own process group:
    killing that group is a node failure."""
    state.mkdir(parents=True, exist_ok=True)
    log = state / f"ray-{name}.log"
    node_name = f"{name}-{free_port()}"         # every node here shares the IP 127.0.0.1
    cmd = [sys.executable, "-m", "cluster.node", "--address", head.gcs_address, "--node-name", node_name]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if resources:
        cmd += ["--resources", json.dumps(resources)]
    if object_store_memory:
        cmd += ["--object-store-memory", str(object_store_memory)]
    env = _env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}:{env.get('PYTHONPATH', '')}"
    proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=ROOT)
    try:
        node_id = _wait_node(head.gcs_address, node_name, timeout, proc, log)
    except Exception:
        stop_group(proc.pid)
        raise
    return Server(proc.pid, "", str(log), gcs_address=head.gcs_address, node_id=node_id)


def submit_command(dashboard_url: str, args: list[str],
                   env_vars: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The `ray job submit --working-dir . -- python ARGS` command line and its environment,
    as a user submits a job: the project folder uploaded, the runtime env of
    `cluster/runtime_env.yaml` with `env_vars` (e.g. this cluster's MLFLOW_TRACKING_URI) over
    its own, the job's output tailed. Its exit code is the job's outcome (1 when it failed)."""
    runtime_env = yaml.safe_load(RUNTIME_ENV.read_text())
    runtime_env["env_vars"].pop("MLFLOW_TRACKING_URI")          # the file's is an example address
    runtime_env["env_vars"] |= env_vars or {}
    # the state API (Ray Train's placement-group cleaner asks it) finds this cluster by name,
    # not by searching the machine, where another Ray instance makes it fail
    runtime_env["env_vars"].setdefault("RAY_API_SERVER_ADDRESS", dashboard_url)
    cmd = [_bin("ray"), "job", "submit", "--working-dir", str(ROOT),
           "--runtime-env-json", json.dumps(runtime_env), "--", "python", *args]
    return cmd, _env() | {"RAY_ADDRESS": dashboard_url}


def submit(dashboard_url: str, args: list[str], env_vars: dict[str, str] | None = None,
           capture: bool = False, timeout: float | None = None) -> subprocess.CompletedProcess:
    """`submit_command`, run: the job's output tailed (or captured), its exit code the job's outcome."""
    cmd, env = submit_command(dashboard_url, args, env_vars)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=capture, text=True, timeout=timeout)


def env_lines(state: Path) -> list[str]:
    info = json.loads((state / "cluster.json").read_text())
    return [f"export RAY_ADDRESS={info['ray']['url']}", f"export MLFLOW_TRACKING_URI={info['mlflow']['url']}",
            "export RAY_AUTH_MODE=token"]


def up(state: Path, num_cpus: int | None = None, workers: int = 0) -> dict:
    """A head (and `workers` worker nodes of `num_cpus` each) plus an MLflow server."""
    if (state / "cluster.json").exists():
        info = json.loads((state / "cluster.json").read_text())
        try:
            os.killpg(info["ray"]["pid"], 0)
            return info                         # already up
        except ProcessLookupError:
            pass
    started: list[Server] = []
    try:
        started.append(start_mlflow(state))
        head = start_ray_head(state, num_cpus=num_cpus)
        started.append(head)
        for i in range(workers):
            started.append(start_ray_worker(head, state, num_cpus=num_cpus, name=f"worker{i}"))
    except Exception:
        for srv in reversed(started):
            srv.stop()
        raise
    info = {"mlflow": asdict(started[0]), "ray": asdict(started[1]), "workers": [asdict(w) for w in started[2:]]}
    (state / "cluster.json").write_text(json.dumps(info, indent=2))
    return info


def down(state: Path) -> None:
    path = state / "cluster.json"
    if not path.exists():
        return
    info = json.loads(path.read_text())
    for srv in info.get("workers", []) + [info["ray"], info["mlflow"]]:
        stop_group(srv["pid"])
    path.unlink()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down", "env"])
    p.add_argument("--state", default=str(ROOT / ".cluster"), help="folder for pids, logs, MLflow db")
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs of each node (default: all)")
    p.add_argument("--workers", type=int, default=0, help="worker nodes besides the head (a multi-node cluster on one machine)")
    a = p.parse_args(argv)
    state = Path(a.state)
    if a.action == "up":
        info = up(state, a.num_cpus, a.workers)
        print(f"Ray dashboard: {info['ray']['url']}   MLflow UI: {info['mlflow']['url']}   "
              f"worker nodes: {len(info['workers'])}")
        print("\n".join(env_lines(state)))
    elif a.action == "down":
        down(state)
        print("local cluster stopped")
    else:
        print("\n".join(env_lines(state)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
