"""The hardware class a model's weights are a function of, and MKL's reproducible mode.

A training run's weights depend on its config, its data, the code and the *hardware class*:
the device type and, on a CPU, its vendor, architecture and vector ISA (which kernel
branches MKL and oneDNN dispatch to, e.g. "AuthenticAMD x86_64 AVX-512"), plus the torch
version and MKL's reproducibility mode. Two machines of one class train bit-identical
weights from one config; `hardware_class` names it, hparams.json records it, and a
checkpoint is resumed only on the same class.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

# MKL's conditional numerical reproducibility (mkl_cbwr.h): the branch codes and the flag.
_MKL_BRANCHES = {
    0: "OFF",
    1: "BRANCH_OFF",
    2: "AUTO",
    3: "COMPATIBLE",
    4: "SSE2",
    6: "SSSE3",
    7: "SSE4_1",
    8: "SSE4_2",
    9: "AVX",
    10: "AVX2",
    12: "AVX512_MIC",
    13: "AVX512",
    14: "AVX512_MIC_E1",
    15: "AVX512_E1",
}
_MKL_AUTO, _MKL_STRICT, _MKL_ALL = 2, 0x10000, -1
NO_MKL = "no MKL"


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """(vendor id, flags) of the CPU from /proc/cpuinfo; ("", set()) where it is unreadable."""
    vendor, flags = "", set()
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return vendor, flags
    for line in lines:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return vendor, flags


def isa_level(flags: set[str]) -> str:
    """The widest vector ISA among the flags that picks kernel branches, and AMX if present."""
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            break
    else:
        name = "SSE" if "sse2" in flags else "baseline"
    return name + (" AMX" if "amx_tile" in flags else "")


def _mkl():
    """torch's MKL service functions (get, set), or None where this torch has no MKL."""
    import torch

    if not torch.backends.mkl.is_available():
        return None
    try:
        library = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
    except OSError:
        return None
    for prefix in ("mkl_serv_cbwr", "mkl_cbwr"):  # torch links MKL statically: serv names
        get, set_ = (getattr(library, f"{prefix}_{op}", None) for op in ("get", "set"))
        if get is not None and set_ is not None:
            get.argtypes = set_.argtypes = [ctypes.c_int]
            return get, set_
    return None


def mkl_mode() -> str:
    """MKL's reproducibility mode in effect in this process, e.g. "AUTO,STRICT"."""
    functions = _mkl()
    if functions is None:
        return NO_MKL
    code = functions[0](_MKL_ALL)
    name = _MKL_BRANCHES.get(code & 0xFFFF, str(code & 0xFFFF))
    return name + (",STRICT" if code & _MKL_STRICT else "")


def strict_mkl() -> str:
    """Put MKL into its strict reproducible mode (AUTO,STRICT) where it can still change:
    its fp32 matmuls then give the same bits on any number of threads (documented for the
    AVX2 and AVX-512 branches on Intel CPUs). MKL fixes the mode at its first call, so call
    this before the first matmul of the process; a mode the user set (MKL_CBWR) is kept.
    Returns the mode in effect (mkl_mode), which is what a run records."""
    functions = _mkl()
    if functions is not None and "MKL_CBWR" not in os.environ:
        functions[1](_MKL_AUTO | _MKL_STRICT)  # refused (< 0) once MKL has run: recorded below
    return mkl_mode()


def hardware_class(device_type: str, device_name: str = "") -> str:
    """The class of machine a run's weights are a function of, in words:
    "cpu: GenuineIntel x86_64 AVX-512 AMX, torch 2.14.1, MKL AUTO,STRICT" or
    "cuda: NVIDIA H100 80GB HBM3, torch 2.14.1"."""
    import torch

    if device_type == "cpu":
        vendor, flags = cpu_info()
        what = " ".join(filter(None, (vendor, platform.machine(), isa_level(flags))))
        return f"cpu: {what}, torch {torch.__version__}, MKL {mkl_mode()}"
    return f"{device_type}: {device_name or 'unknown'}, torch {torch.__version__}"
