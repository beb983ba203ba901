"""A local cluster on 127.0.0.1 for the `ray job submit` path: a Ray head (with its
dashboard) and an MLflow tracking server (sqlite backend, artifacts served by the server).

    python -m cluster.local up   [--state .cluster] [--num-cpus N]   # prints the env to use
    python -m cluster.local down [--state .cluster]
    python -m cluster.local env  [--state .cluster]                  # `eval $(...)` in a shell

Each server runs in its own process group, so `down` stops exactly what `up`
started (never other Ray instances on the machine). Tests use the same functions.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAFE_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "RAY_AUTH_MODE": "token",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def stop_group(pid: int, timeout: float = 8.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
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
    gcs_address: str = ""          # Ray heads only: what `ray.init(address=...)` takes

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


def start_ray_head(state: Path, num_cpus: int | None = None, port: int | None = None,
                   dashboard_port: int | None = None, timeout: float = 120,
                   extra_env: dict[str, str] | None = None) -> Server:
    """`ray start --head --block` in its own process group; url is the dashboard (job API)."""
    state.mkdir(parents=True, exist_ok=True)
    port, dashboard_port = port or free_port(), dashboard_port or free_port()
    cmd = [_bin("ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
           "--port", str(port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
           "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
           "--metrics-export-port", str(free_port()), "--min-worker-port", "0", "--max-worker-port", "0",
           "--disable-usage-stats", "--temp-dir", f"/tmp/ray_ctt_{port}"]
    if num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    env = _env() | (extra_env or {})
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"   # jobs run this interpreter
    url = f"http://127.0.0.1:{dashboard_port}"
    pid = _serve(cmd, state / "ray-head.log", f"{url}/api/version", timeout, env, ROOT)
    return Server(pid, url, str(state / "ray-head.log"), gcs_address=f"127.0.0.1:{port}")


def env_lines(state: Path) -> list[str]:
    info = json.loads((state / "cluster.json").read_text())
    return [f"export RAY_ADDRESS={info['ray']['url']}", f"export MLFLOW_TRACKING_URI={info['mlflow']['url']}",
            "export RAY_AUTH_MODE=token"]


def up(state: Path, num_cpus: int | None = None) -> dict:
    if (state / "cluster.json").exists():
        info = json.loads((state / "cluster.json").read_text())
        try:
            os.killpg(info["ray"]["pid"], 0)
            return info                         # already up
        except ProcessLookupError:
            pass
    mlflow_srv = start_mlflow(state)
    try:
        ray_srv = start_ray_head(state, num_cpus=num_cpus)
    except Exception:
        mlflow_srv.stop()
        raise
    info = {"ray": asdict(ray_srv), "mlflow": asdict(mlflow_srv)}
    (state / "cluster.json").write_text(json.dumps(info, indent=2))
    return info


def down(state: Path) -> None:
    path = state / "cluster.json"
    if not path.exists():
        return
    info = json.loads(path.read_text())
    for key in ("ray", "mlflow"):
        stop_group(info[key]["pid"])
    path.unlink()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["up", "down", "env"])
    p.add_argument("--state", default=str(ROOT / ".cluster"), help="folder for pids, logs, MLflow db")
    p.add_argument("--num-cpus", type=int, default=None)
    a = p.parse_args(argv)
    state = Path(a.state)
    if a.action == "up":
        info = up(state, a.num_cpus)
        print(f"Ray dashboard: {info['ray']['url']}   MLflow UI: {info['mlflow']['url']}")
        print("\n".join(env_lines(state)))
    elif a.action == "down":
        down(state)
        print("local cluster stopped")
    else:
        print("\n".join(env_lines(state)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
