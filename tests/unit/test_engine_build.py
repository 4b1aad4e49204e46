"""doctor's engine checks: what llama.cpp was built with, judged against the CPU."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from memos_desktop.engines.build_info import cpu_flags, engine_build, judge, parse_system_info

# llama.cpp's system info as a native build prints it on a Sapphire Rapids (AMX) Xeon.
NATIVE_SPR = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
PORTABLE = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 0 | OPENMP = 1 |"
)
SPR_CPU = frozenset(
    "pni ssse3 avx avx2 f16c fma bmi2 avx512f avx512vbmi avx512_vnni avx512_bf16 "
    "amx_tile amx_int8 amx_bf16".split()
)
OLD_CPU = frozenset("pni ssse3 avx".split())


def by_name(checks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in checks}


def test_parse_keeps_only_features_that_are_on() -> None:
    assert parse_system_info(PORTABLE) >= {"AVX2", "FMA", "OPENMP"}
    assert "AVX512" not in parse_system_info(PORTABLE)


def test_a_native_amx_build_on_an_amx_cpu_is_warned_with_the_fix() -> None:
    checks = by_name(judge(parse_system_info(NATIVE_SPR), SPR_CPU))
    assert checks["engine AMX"]["status"] == "warn"
    assert (
        "20824" in checks["engine AMX"]["detail"] and "make clean" in checks["engine AMX"]["detail"]
    )
    assert checks["engine CPU"]["status"] == "ok"


def test_the_portable_build_on_an_amx_cpu_is_fine() -> None:
    checks = by_name(judge(parse_system_info(PORTABLE), SPR_CPU))
    assert "engine AMX" not in checks and checks["engine CPU"]["status"] == "ok"


def test_a_build_for_a_newer_cpu_fails_naming_the_missing_instructions() -> None:
    checks = by_name(judge(parse_system_info(PORTABLE), OLD_CPU))
    assert checks["engine CPU"]["status"] == "fail"
    assert "AVX2" in checks["engine CPU"]["detail"] and "BMI2" in checks["engine CPU"]["detail"]


def test_cpu_flags_unreadable_is_none_not_a_crash(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "missing") is None
    (tmp_path / "cpuinfo").write_text("processor : 0\nflags : fpu avx2 amx_tile\n")
    assert cpu_flags(tmp_path / "cpuinfo") == {"fpu", "avx2", "amx_tile"}


def test_the_installed_engine_matches_this_cpu() -> None:
    b = engine_build()
    assert b.version and b.system_info
    assert by_name(b.checks)["engine CPU"]["status"] == "ok", b.checks


def test_the_default_install_is_the_portable_build() -> None:
    """`make test` sets MEMOS_LLAMA_BUILD; the default (portable) build has no AMX, no AVX-512."""
    b = engine_build()
    if os.environ.get("MEMOS_LLAMA_BUILD", "portable") != "portable":
        assert b.built, b.system_info  # LLAMA_NATIVE=1: built for this CPU, checked above
        return
    assert not {f for f in b.built if f.startswith(("AMX", "AVX512"))}, b.system_info
    if platform.machine() in ("x86_64", "AMD64"):
        assert {"AVX", "AVX2", "FMA", "F16C"} <= b.built, b.system_info
