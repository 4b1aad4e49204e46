"""What the llama.cpp engine was built with and what this CPU has: for ``doctor``.

A native build (``-march=native``) on an AMX CPU compiles llama.cpp's AMX kernels, which crash on
the first decode of Q4_K models (llama.cpp issue 20824), and a wheel built on one CPU and copied to
another can use instructions that CPU lacks (SIGILL). Both are reported here with the fix, before
the person meets them as a crash.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

# llama.cpp's compile-time feature name -> the Linux /proc/cpuinfo flag that provides it.
CPU_FLAG = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX_VNNI": "avx_vnni",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
    "AMX_TILE": "amx_tile",
    "AMX_BF16": "amx_bf16",
}
AMX_ISSUE = "llama.cpp issue 20824"
REBUILD = "rebuild the portable engine: `make clean && make install` (without LLAMA_NATIVE=1)"


@dataclass(frozen=True)
class EngineBuild:
    version: str
    system_info: str
    built: frozenset[str]  # features llama.cpp's CPU backend was compiled with
    cpu: frozenset[str] | None  # this CPU's flags (None where they cannot be read)
    checks: list[dict[str, str]] = field(default_factory=list)


def parse_system_info(text: str) -> frozenset[str]:
    """``"CPU : SSE3 = 1 | AVX = 1 | AMX_INT8 = 0 |"`` -> the features that are on."""
    return frozenset(m.group(1) for m in re.finditer(r"\b([A-Z][A-Z0-9_]*) = 1\b", text))


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return frozenset(m.group(1).split()) if m else None


def judge(built: frozenset[str], cpu: frozenset[str] | None) -> list[dict[str, str]]:
    """doctor checks for a build with ``built`` features on a CPU with ``cpu`` flags."""
    shown = sorted(f for f in built if f in CPU_FLAG)
    checks = [{"name": "engine build", "status": "ok", "detail": " ".join(shown) or "no x86 SIMD"}]
    if cpu is None:
        return checks
    amx_built = sorted(f for f in built if f.startswith("AMX"))
    if amx_built and "amx_tile" in cpu:
        checks.append(
            {
                "name": "engine AMX",
                "status": "warn",
                "detail": "this llama.cpp build uses AMX kernels "
                f"({', '.join(amx_built)}) on a CPU that has AMX; they crash on the first "
                f"decode of Q4_K models ({AMX_ISSUE}): {REBUILD}",
            }
        )
    missing = sorted(f for f in shown if CPU_FLAG[f] not in cpu)
    if missing:
        checks.append(
            {
                "name": "engine CPU",
                "status": "fail",
                "detail": "llama.cpp was built for instructions this CPU lacks "
                f"({', '.join(missing)}): the engine will crash (illegal instruction); {REBUILD}",
            }
        )
    else:
        checks.append(
            {"name": "engine CPU", "status": "ok", "detail": "this CPU has every built feature"}
        )
    return checks


def engine_build() -> EngineBuild:
    """The running llama-cpp-python and its llama.cpp build, judged against this CPU."""
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    info = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
    built = parse_system_info(info)
    cpu = cpu_flags() if platform.system() == "Linux" else None
    return EngineBuild(str(llama_cpp.__version__), info, built, cpu, judge(built, cpu))
