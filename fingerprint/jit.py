"""When the optional compiled kernels run: one rule for every module that has them.

The compiled kernels (numba, the extra `fast`) give the same results as the numpy code beside
them, faster, but importing numba costs a process 1-2 s. So each caller asks three things here:
are compiled kernels allowed ($LINEAGE_NO_JIT unset or 0), are they worth it yet (numba already
imported, or enough numpy work done in this process), and is the module there (numba installed).
Used by `fingerprint.kernels`, `fingerprint.slot_layouts` and lineage's all-pairs and scan
counting.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from functools import cache
from types import ModuleType

__all__ = ["NO_JIT_ENV", "allowed", "compiled", "installed", "worth"]

NO_JIT_ENV = "LINEAGE_NO_JIT"


def allowed() -> bool:
    """False when $LINEAGE_NO_JIT is set to anything but "" or "0"."""
    return os.environ.get(NO_JIT_ENV, "0") in ("", "0")


def worth(done: int, after: int) -> bool:
    """Whether a process turns to compiled code now: numba is imported already (its import is
    paid), or the numpy work done (`done` units) has reached `after`."""
    return done >= after or "numba" in sys.modules


@cache
def installed() -> bool:
    """Whether numba can be imported (found, not imported)."""
    return importlib.util.find_spec("numba") is not None


@cache
def compiled(module: str) -> ModuleType | None:
    """The compiled-kernel module `module` (imported once), or None without numba."""
    if not installed():
        return None
    try:
        return importlib.import_module(module)
    except ImportError:  # numba present but unusable (a broken install): numpy runs
        return None
