"""Threads to compute with on the CPU (the LLM server's, the embedder's): one per physical
core the appliance may use, within its CPU quota (app/cpus.py), read from a fake /sys."""

from __future__ import annotations

from pathlib import Path

from app.cpus import usable_cores


def fake_sys(root: Path, cores_of_cpus: list[int], cpu_max: str | None = None, v1_quota: tuple[int, int] | None = None):
    for cpu, core in enumerate(cores_of_cpus):
        topology = root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text(f"{core}\n")
    cgroup = root / "fs" / "cgroup"
    cgroup.mkdir(parents=True)
    if cpu_max is not None:
        (cgroup / "cpu.max").write_text(cpu_max + "\n")
    if v1_quota is not None:
        (cgroup / "cpu").mkdir()
        (cgroup / "cpu" / "cpu.cfs_quota_us").write_text(f"{v1_quota[0]}\n")
        (cgroup / "cpu" / "cpu.cfs_period_us").write_text(f"{v1_quota[1]}\n")
    return root


def test_one_thread_per_physical_core(tmp_path):
    two_cores = fake_sys(tmp_path / "a", [0, 1])
    assert usable_cores(two_cores, {0, 1}) == 2  # llama_cpp.server alone would use 1
    hyperthreaded = fake_sys(tmp_path / "b", [0, 0, 1, 1, 2, 2, 3, 3])
    assert usable_cores(hyperthreaded, set(range(8))) == 4
    assert usable_cores(hyperthreaded, {0, 1, 2}) == 2  # only the CPUs this process may use


def test_a_cpu_quota_caps_the_threads(tmp_path):
    assert usable_cores(fake_sys(tmp_path / "v2", list(range(16)), cpu_max="250000 100000"), set(range(16))) == 3
    assert usable_cores(fake_sys(tmp_path / "none", list(range(16)), cpu_max="max 100000"), set(range(16))) == 16
    assert usable_cores(fake_sys(tmp_path / "v1", list(range(16)), v1_quota=(200000, 100000)), set(range(16))) == 2
    assert usable_cores(fake_sys(tmp_path / "v1off", list(range(16)), v1_quota=(-1, 100000)), set(range(16))) == 16
    assert usable_cores(fake_sys(tmp_path / "tiny", [0, 1], cpu_max="10000 100000"), {0, 1}) == 1


def test_the_quota_of_the_process_own_cgroup_or_above_counts(tmp_path):
    """Under systemd or a nested cgroup the process's cgroup is not the root: the tightest
    quota from it up to the root applies (measured here: with a 1-CPU quota, two threads
    decoded at 0.70x the speed of one)."""
    root = fake_sys(tmp_path / "sys", list(range(8)), cpu_max="max 100000")
    nested = root / "fs" / "cgroup" / "cpu" / "pods" / "pod1"
    nested.mkdir(parents=True)
    (nested.parent / "cpu.cfs_quota_us").write_text("150000\n")  # the parent: 1.5 CPUs
    (nested.parent / "cpu.cfs_period_us").write_text("100000\n")
    (nested / "cpu.cfs_quota_us").write_text("-1\n")  # the process's own: unlimited
    (nested / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/pods/pod1\n2:cpu,cpuacct:/pods/pod1\n0::/\n")
    assert usable_cores(root, set(range(8)), proc) == 2
    unified = root / "fs" / "cgroup" / "user.slice"
    unified.mkdir()
    (unified / "cpu.max").write_text("100000 100000\n")
    proc.write_text("0::/user.slice\n")
    assert usable_cores(root, set(range(8)), proc) == 1
    proc.write_text("0::/\n")
    assert usable_cores(root, set(range(8)), proc) == 8


def test_unknown_topology_counts_every_cpu(tmp_path):
    (tmp_path / "empty").mkdir()
    assert usable_cores(tmp_path / "empty", {0, 1, 2}) == 3


def test_the_embedder_on_the_cpu_computes_with_the_usable_cores():
    """Unless RAG_TORCH_THREADS says otherwise; PyTorch's own guess is every CPU it sees."""
    import torch

    from app.cpus import usable_cores
    from app.embedding.encoder import load_embedder

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(usable_cores() + 3)  # as on a host with more CPUs than the quota
        load_embedder("all-MiniLM-L6-v2", "cpu", 32)
        assert torch.get_num_threads() == usable_cores()
        load_embedder("all-MiniLM-L6-v2", "cpu", 32, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
