"""Long commands on one console line each: a command's whole output goes to its log file,
and the console shows the step, its elapsed time and the progress its output reports
(`featurize 120/200`, `seed 2/3, epoch 40, best val 0.74`). On a terminal the line is
redrawn in place while the step runs; elsewhere (CI, a pipe) it is printed once, at the end.
A step that fails prints the last lines of its log and the log's path."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TAIL = 15                       # log lines shown when a step fails


@dataclass
class Progress:
    """What a job's output says of how far it got, from its own lines."""
    featurized: str = ""
    seed: str = ""
    epoch: int = -1
    best: float = float("nan")
    ended: list[str] = field(default_factory=list)

    PATTERNS = (
        ("featurized", re.compile(r"featurize (\d+/\d+)\b")),
        ("seed", re.compile(r"\bseed (\d+/\d+) \(")),
        ("epoch", re.compile(r"\bepoch (\d+): .*\bbest_val_auprc_micro=([0-9.]+)")),    # the worker's lines
        ("ended", re.compile(r"^(\w[\w-]*) summary: .*\"run_id\": \"(\w{8})")),
    )

    def feed(self, line: str) -> None:
        for what, pattern in self.PATTERNS:
            m = pattern.search(line)
            if not m:
                continue
            if what == "epoch":
                self.epoch, self.best = int(m[1]), float(m[2])
            elif what == "ended":
                self.ended.append(f"{m[1]} run {m[2]}")
            elif what == "seed":
                self.seed, self.epoch, self.best = m[1], -1, float("nan")
            else:
                setattr(self, what, m[1])

    def text(self) -> str:
        parts = []
        if self.featurized:
            parts.append(f"featurize {self.featurized}")
        if self.seed:
            parts.append(f"seed {self.seed}")
        if self.epoch >= 0:
            parts.append(f"epoch {self.epoch + 1}, best val {self.best:.2f}")
        if self.ended and not parts:
            parts.append(", ".join(self.ended))
        return ", ".join(parts)


def step_line(label: str, seconds: float, progress: str, status: str = "") -> str:
    return f"{label:<44} {seconds:6.0f} s" + (f"  {progress}" if progress else "") + (f"  {status}" if status else "")


def run_step(label: str, cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
             out=None) -> bool:
    """Run `cmd` with its output in `log`; one console line for it. True when it succeeded."""
    out = out or sys.stdout
    tty = out.isatty()
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True)
        with open(log) as reader:
            while True:
                done = proc.poll() is not None
                for line in reader.readlines():
                    progress.feed(line.rstrip("\n"))
                if tty:
                    out.write("\r" + step_line(label, time.time() - t0, progress.text()) + "\x1b[K")
                    out.flush()
                if done:
                    break
                time.sleep(1.0)
    ok = proc.returncode == 0
    end = "\r" if tty else ""
    out.write(end + step_line(label, time.time() - t0, progress.text(), "" if ok else "FAILED") + "\n")
    if not ok:
        lines = log.read_text(errors="replace").splitlines()[-TAIL:]
        out.write("".join(f"   | {line}\n" for line in lines) + f"   full log: {log}\n")
    out.flush()
    return ok
