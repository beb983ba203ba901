"""One more Ray node for a head on this machine, bound to 127.0.0.1 only:

    python -m cluster.node --address 127.0.0.1:PORT [--num-cpus N] [--node-name NAME]
                           [--resources '{"x": 1}'] [--object-store-memory BYTES]

`ray start --address` refuses to add a node while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
and without that setting Ray rewrites 127.0.0.1 to the machine's routable address, so
every socket of the node listens beyond loopback. This starts the node's processes as
`ray start --block` does, through the node class that Ray's own `ray.cluster_utils`
uses, with the setting kept; it runs until SIGTERM (a clean stop) or SIGKILL of its
process group (a node failure). Real multi-machine clusters use `ray start` (cluster/).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

from cluster.env import SAFE_ENV, free_port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", required=True, help="the head's GCS address, 127.0.0.1:PORT")
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--node-name", default=None)
    p.add_argument("--resources", default=None, help="custom resources, JSON")
    p.add_argument("--object-store-memory", type=int, default=None)
    p.add_argument("--temp-dir", default=None,
                   help="the node's own logs, sockets and spill folder (default: a new one under /tmp)")
    a = p.parse_args(argv)
    # Its own folder, as on a machine of its own: nodes sharing the head's session folder each
    # tail every worker's log, and a job's output holds each line once per node.
    temp_dir = a.temp_dir or tempfile.mkdtemp(prefix="ray-node-", dir="/tmp")   # short: socket paths

    os.environ.update(SAFE_ENV)              # above all RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: loopback only
    # lazy: Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when imported, so only after the line above
    from ray._private.node import Node
    from ray._private.parameter import RayParams
    params = RayParams(gcs_address=a.address, node_ip_address="127.0.0.1", num_cpus=a.num_cpus,
                       resources=json.loads(a.resources) if a.resources else None, node_name=a.node_name,
                       object_store_memory=a.object_store_memory, min_worker_port=0, max_worker_port=0,
                       node_manager_port=0, dashboard_agent_listen_port=free_port(),
                       metrics_export_port=free_port(), runtime_env_agent_port=free_port(),
                       temp_dir=temp_dir)
    node = Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(f"ray node {node.unique_id} joined {a.address}", flush=True)

    def stop(*_):
        node.kill_all_processes(check_alive=False, allow_graceful=True)
        if not a.temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
