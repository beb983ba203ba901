"""Peak resident memory of a process, as the featurize summary and the benchmarks report it."""
from __future__ import annotations

import resource


def vm_hwm_bytes(pid: str | int = "self") -> int | None:
    """A process's peak resident memory (VmHWM in /proc, Linux); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory so far: VmHWM (ru_maxrss survives exec, so a job
    started by a big process would report its parent's peak), else ru_maxrss."""
    hwm = vm_hwm_bytes()
    return hwm / 2**20 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
