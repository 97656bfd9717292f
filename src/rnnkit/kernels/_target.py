"""The CPU the kernels are compiled for, and the micro-kernel's tiles chosen from it.

The product of ``_gemm.py`` keeps a tile of ``c`` (``mr`` rows × ``nv`` vectors) in
registers while ``k`` runs; each step also holds ``nv`` vectors of a row of ``b`` and one
broadcast scalar of ``a``. The tile is right for a CPU when those fit its vector registers:

=========================  ======  =========  ===========  ==================================
target                     vector  registers  main tile    registers used (acc + b + bcast)
=========================  ======  =========  ===========  ==================================
``avx512`` (AVX-512F)      64 B    32         8 × 3        24 + 3 + 1 = 28
``avx2`` (AVX2/FMA, AVX)   32 B    16         6 × 2        12 + 2 + 1 = 15
``neon`` (AArch64)         16 B    32         8 × 3        28
``sse`` (x86 without AVX)  16 B    16         6 × 2        15
=========================  ======  =========  ===========  ==================================

A tile made for AVX-512 on an AVX2 CPU (8 × 3 vectors of 64 bytes: 48 of its 16 registers)
spills: about 1,400 stores and 1,300 loads around 832 multiply-adds, and 21-31 GFLOP/s on a
Zen 3 core against 66-84 for OpenBLAS (issue 22).

The target is the one numba compiles for: ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` when
set (``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=`` compiles for AVX2 on any x86 host),
else LLVM's view of the host. ``RNNKIT_GEMM_TILES=avx512|avx2|neon|sse`` forces a choice of
tiles (to test another CPU's tiles on this one: the code stays exact, only slower or
faster). The choice is made once, at import; :func:`stamp` names it for the on-disk cache
of compiled code (``_jit.py``), so that a change of target, tiles or kernel source compiles
afresh instead of loading code made for something else.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import time
from pathlib import Path
from typing import NamedTuple

#: the environment variable that forces a kind of tiles
ENV = "RNNKIT_GEMM_TILES"


class Tiles(NamedTuple):
    """A target's vector width and registers, and the tiles of the product: ``nv[mr]``
    vectors per row for a tile of ``mr`` rows; ``rows`` is the main tile's (the others, 4, 2
    and 1 rows, take what ``M % rows`` leaves)."""

    kind: str
    vector_bytes: int
    registers: int
    rows: int
    nv: dict[int, int]


# per kind: the main tile, then 4, 2 and 1 rows with at most registers - 1 for acc + b.
# avx512's are those measured on Zen 5 (docs/benchmarks.md); avx2's 4-row tile has 12
# accumulators, with ``b`` read from memory by the multiply-adds (no spill, checked in the
# assembly: tests/test_kernels.py)
KINDS = {
    "avx512": Tiles("avx512", 64, 32, 8, {8: 3, 4: 4, 2: 8, 1: 16}),
    "avx2": Tiles("avx2", 32, 16, 6, {6: 2, 4: 2, 2: 4, 1: 7}),
    "neon": Tiles("neon", 16, 32, 8, {8: 3, 4: 4, 2: 8, 1: 16}),
    "sse": Tiles("sse", 16, 16, 6, {6: 2, 4: 2, 2: 4, 1: 7}),
}

# CPU names that LLVM gives AVX-512F by default (for NUMBA_CPU_NAME with empty features)
_AVX512_NAMES = ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake",
                 "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids",
                 "diamondrapids", "knl", "knm", "znver4", "znver5", "x86-64-v4")
_AVX2_NAMES = ("haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake",
               "arrowlake", "lunarlake", "gracemont", "sierraforest", "grandridge",
               "clearwaterforest", "znver1", "znver2", "znver3", "bdver4", "x86-64-v3",
               "sandybridge", "ivybridge", "bdver", "btver2", "corei7-avx", "core-avx")


def _features(text: str) -> set[str]:
    """The enabled features of an LLVM feature string (``+avx2,-avx512f,...``)."""
    return {f[1:] for f in text.split(",") if f.startswith("+")}


def target() -> tuple[str, set[str], str]:
    """``(cpu name, enabled features, machine)`` as numba compiles: its configuration
    (``NUMBA_CPU_NAME``, ``NUMBA_CPU_FEATURES``), else LLVM's host."""
    import llvmlite.binding as llvm
    from numba.core import config

    name = config.CPU_NAME or llvm.get_host_cpu_name()
    if config.CPU_FEATURES is not None:
        feats = _features(config.CPU_FEATURES)
        if not feats:  # a name alone: the features LLVM gives that CPU
            low = name.lower()
            if low.startswith(_AVX512_NAMES):
                feats = {"avx512f", "avx2", "fma"}
            elif low.startswith(_AVX2_NAMES):
                feats = {"avx2", "fma"} if not low.startswith(("sandy", "ivy", "corei7-avx")) \
                    else {"avx"}
    else:
        try:
            host = llvm.get_host_cpu_features()
        except RuntimeError:  # LLVM cannot tell: assume the least
            host = {}
        feats = {k for k, v in host.items() if v}
        if not config.ENABLE_AVX:  # numba then drops every avx* feature
            feats = {f for f in feats if not f.startswith("avx")}
    return name, feats, platform.machine().lower()


def kind_of(feats: set[str], machine: str) -> str:
    """The kind of tiles for a target's features and machine."""
    if machine in ("aarch64", "arm64") or "neon" in feats:
        return "neon"
    if "avx512f" in feats:
        return "avx512"
    if "avx2" in feats or "avx" in feats:
        return "avx2"
    return "sse"


def choose() -> Tiles:
    """The tiles for this process: ``RNNKIT_GEMM_TILES`` when set, else the target's."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced:
        if forced not in KINDS:
            raise ValueError(f"{ENV}: expected one of {', '.join(KINDS)}, got {forced!r}")
        return KINDS[forced]
    _, feats, machine = target()
    return KINDS[kind_of(feats, machine)]


def describe() -> dict[str, object]:
    """What the kernels are compiled for, for ``rnnkit bench``'s header and ``info``."""
    name, feats, machine = target()
    t = TILES
    return {"cpu_target": name, "vector_bits": 8 * t.vector_bytes, "tiles": t.kind,
            "tile": f"{t.rows}x{t.nv[t.rows]}", "forced": bool(os.environ.get(ENV, "").strip()),
            "fma": "fma" in feats or machine in ("aarch64", "arm64")}


#: the kernels' files that hold no compiled code
NOT_COMPILED = ("__init__.py", "_blas.py", "_parallel.py", "_target.py")


def stamp() -> str:
    """A short hash of what the compiled code depends on beyond numba's own key (which holds
    the CPU name and features, and each function's own source file): every kernels source
    file with compiled code (a kernel inlines ``_jit.py``'s and ``_gemm.py``'s code) and the
    tiles. The files of Python only (``NOT_COMPILED``) are left out: an edit there compiles
    nothing again."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name in NOT_COMPILED:
            continue
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(repr(TILES).encode())
    name, feats, machine = target()
    h.update(repr((name, sorted(feats), machine)).encode())
    return h.hexdigest()[:16]


#: another stamp's folder is removed once none of its files changed for this long: a process
#: of another rnnkit version may still load from it (an upgrade while a job runs)
STALE_S = 24 * 3600
_FOLDER = re.compile(r"^rnnkit-[0-9a-f]{16}$")
# numba's index and code files (``lstm.forward_loop-128.py311.nbi``, ``...py311.1.nbc``), and
# the measured choices of ``_blas.py``
_OWN_FILE = re.compile(r"^[\w.<>-]+\.nb[ic]$|^blas\.json$")


def clean_old(current: str, now: float | None = None) -> list[str]:
    """Remove the kernel cache folders of other stamps beside ``current`` (the folder in use):
    code compiled for another version of the kernels, tiles or CPU target, which nothing
    loads again. Only rnnkit's own: a folder (not a link) named ``rnnkit-`` and 16 hex
    digits, holding only numba's cache files and ``blas.json`` (plain files), none changed for
    ``STALE_S``; any other folder or file is left. Returns the folders removed; a file that
    cannot be removed leaves its folder (errors are not raised: the cache works either way)."""
    now = time.time() if now is None else now
    parent, mine = os.path.split(os.path.abspath(current))
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (entry.name == mine or not _FOLDER.match(entry.name)
                    or not entry.is_dir(follow_symlinks=False)):
                continue
            files = list(os.scandir(entry.path))
            if any(not f.is_file(follow_symlinks=False) or not _OWN_FILE.match(f.name)
                   or now - f.stat(follow_symlinks=False).st_mtime < STALE_S for f in files):
                continue
            for f in files:
                os.unlink(f.path)
            os.rmdir(entry.path)
            removed.append(entry.path)
        except OSError:
            continue
    return removed


TILES = choose()
