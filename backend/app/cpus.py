"""How many threads to compute with on the CPU: one per physical core this process may use.

Why: libraries guess. llama_cpp.server decodes with half the CPUs (a guess at the physical
cores where each has two hyperthreads), which on a 2-core cloud machine is one thread:
SmolLM2 wrote 63 tokens/s there, against 84 with two (bench/llm_threads.py). PyTorch and
llama.cpp's own server take every core of the host, which in a container limited by a CPU
quota means threads that wait to be scheduled: in a 1-CPU cgroup here two threads decoded
at 0.70x and embedded at 0.86x the speed of one (docs/DESIGN.md). So: the physical cores of
the CPUs the process may use (its affinity), capped by the tightest CPU quota of its cgroup.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

SYS = Path("/sys")


def usable_cores(sys_root: Path = SYS, allowed: set[int] | None = None,
                 proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """One per physical core this process may run on, at most its CPU quota, at least 1."""
    if allowed is None:  # no CPU affinity outside Linux: every CPU
        affinity = getattr(os, "sched_getaffinity", None)
        allowed = affinity(0) if affinity else set(range(os.cpu_count() or 1))
    cores = _physical_cores(sys_root, allowed)
    quota = _cpu_quota(sys_root, proc_cgroup)
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


def _cpu_quota(sys_root: Path, proc_cgroup: Path) -> float | None:
    """CPUs' worth of time this process's cgroup may use, None if unlimited: the tightest
    `cpu.max` (cgroup v2) or `cpu.cfs_quota_us` (v1) from its own cgroup up to the root.
    In a container its own cgroup usually shows as the root; under systemd or a nested
    cgroup it does not."""
    v2_path, v1_path = "/", "/"
    try:
        for line in proc_cgroup.read_text().splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            if hierarchy == "0" and not controllers:
                v2_path = path
            elif "cpu" in controllers.split(","):
                v1_path = path
    except (OSError, ValueError):
        pass
    cgroup = sys_root / "fs" / "cgroup"
    quotas = [q for d in _up_to(cgroup, v2_path) if (q := _v2_quota(d)) is not None]
    quotas += [q for d in _up_to(cgroup / "cpu", v1_path) if (q := _v1_quota(d)) is not None]
    return min(quotas, default=None)


def _up_to(root: Path, path: str) -> list[Path]:
    """`root/path` and each folder above it, up to `root`."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
