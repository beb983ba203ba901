"""The input mistakes a new user makes, and how fast each job answers them: one line and
exit 2, before Ray or MLflow start."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MISTAKES = [   # job, its arguments (TMP: a scratch folder), what the one line says
    ("featurize", ["--input", "TMP/missing.csv", "--output", "TMP/s"], "input TMP/missing.csv does not exist"),
    ("featurize", ["--input", "TMP/m.csv", "--output", "TMP/s"], "lacks column(s) ['path']"),
    ("featurize", ["--output", "TMP/s"], "give --input (see --help)"),
    ("train", ["--features", "TMP/nope"], "TMP/nope is not a feature store"),
    ("baselines", ["--features", "TMP", "--method", "random"], "is not a feature store"),
    ("baselines", ["--features", "TMP"], "give --method (see --help)"),
]


def manifest_without_paths(folder: Path) -> str:
    (folder / "m.csv").write_text("trailer_id,file\na,a.mp4\n")
    return str(folder / "m.csv")


def time_mistakes(folder: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Each mistake run as a user would: its exit code, its stderr, its wall seconds."""
    manifest_without_paths(folder)
    out = []
    for job, args, message in MISTAKES:
        argv = [a.replace("TMP", str(folder)) for a in args]
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, f"jobs/{job}.py", *argv], cwd=ROOT, capture_output=True, text=True,
                              env=env, timeout=60)
        out.append({"job": job, "args": argv, "code": proc.returncode, "seconds": time.perf_counter() - t,
                    "said": message.replace("TMP", str(folder)) in proc.stderr, "stderr": proc.stderr})
    return out
