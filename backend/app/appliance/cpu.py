"""How many threads the LLM server should decode with on a machine without a GPU.

Why: llama_cpp.server decodes with half the CPUs by default (a guess at the physical
cores on a machine with two hyperthreads per core), which on a 2-core cloud machine is one
thread: SmolLM2 wrote 63 tokens/s there, against 84 with two (bench/llm_threads.py). One
thread per physical core is what llama.cpp's own server picks. In a container the count
is further capped by the CPUs the process may use and by its CPU quota, since threads
beyond the quota are throttled, not run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

SYS = Path("/sys")


def decode_threads(sys_root: Path = SYS, allowed: set[int] | None = None) -> int:
    """One per physical core this process may run on, at most its CPU quota, at least 1."""
    if allowed is None:  # no CPU affinity outside Linux: every CPU
        affinity = getattr(os, "sched_getaffinity", None)
        allowed = affinity(0) if affinity else set(range(os.cpu_count() or 1))
    cores = _physical_cores(sys_root, allowed)
    quota = _cpu_quota(sys_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _physical_cores(sys_root: Path, cpus: set[int]) -> int:
    """Hyperthreads of one core counted once; every CPU counted where the topology is unknown."""
    cores = set()
    for cpu in cpus:
        topology = sys_root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return len(cores)


def _cpu_quota(sys_root: Path) -> float | None:
    """CPUs' worth of time the cgroup may use (cgroup v2 `cpu.max`, v1 `cfs_quota_us`), None if unlimited."""
    try:
        quota, period = (sys_root / "fs" / "cgroup" / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1 = sys_root / "fs" / "cgroup" / "cpu"
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
