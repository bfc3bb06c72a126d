"""llama.cpp is compiled without its AMX kernels, which crash on some Intel CPUs
(scripts/amx.sh; docs/DESIGN.md, "The CPU LLM: ... no AMX kernels")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def amx(call: str) -> subprocess.CompletedProcess:
    """A function of scripts/amx.sh, run as the scripts run it."""
    return subprocess.run(["bash", "-c", f"source scripts/amx.sh && {call}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def defines(flags: list[str]) -> str:
    return subprocess.run(["cc", *flags, "-dM", "-E", "-x", "c", "-"], input="", capture_output=True,
                          text=True, timeout=60).stdout


def test_the_flags_keep_amx_out_even_of_a_build_for_an_amx_cpu():
    flags = amx("no_amx_flags").stdout.split()
    if not flags:
        pytest.skip("the C compiler here does not know AMX (not x86)")
    if "__AMX_INT8__" not in defines(["-march=sapphirerapids"]):
        pytest.skip("the C compiler here cannot build for Sapphire Rapids")
    # llama.cpp adds -march=native after our flags: explicit flags win whatever their order
    assert "__AMX_INT8__" not in defines([*flags, "-march=sapphirerapids"])
    assert "__AMX_TILE__" not in defines([*flags, "-march=sapphirerapids"])
    assert "__AVX512F__" in defines([*flags, "-march=sapphirerapids"])  # the rest stays


def test_the_llama_cpp_the_tests_run_has_no_amx_kernels(tmp_path):
    folder = amx(f"llama_cpp_folder {sys.executable}").stdout.strip()
    assert folder and Path(folder).is_dir()
    assert amx(f"has_amx_kernels '{folder}'").returncode == 1
    # and the check does find them where they are
    (tmp_path / "libggml-cpu.so").write_bytes(b"\0ggml_backend_amx_mul_mat\0")
    assert amx(f"has_amx_kernels '{tmp_path}'").returncode == 0
