"""scripts/fuzz_safetensors.py: structure-aware mutations of real safetensors folders through
open, fingerprint, serialize, add and compare: zero crashes, hangs, memory blowups, changed
stores and lenient reads. A fast profile runs in the normal suite; the long one is `slow`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ZERO = (
    "crashes",
    "hangs",
    "memory_blowups",
    "store_changed_after_rejected_add",
    "ok_without_signature",
    "roundtrip_mismatch",
    "accepted_but_library_refuses",
)


def _fuzz(tmp_path: Path, cases: int, seed: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", str(ROOT / "scripts" / "fuzz_safetensors.py"),
         "--cases", str(cases), "--seed", str(seed), "--dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=7200,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr[-3000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["cases"] == cases
    assert {k: counts[k] for k in ZERO} == dict.fromkeys(ZERO, 0), counts["failures"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    return counts


def test_fuzz_fast_profile(tmp_path):
    counts = _fuzz(tmp_path, cases=120, seed=0)
    # the mutations reach every step: some cases are refused, some go all the way
    assert counts["outcomes"].get("open:malformed", 0) > 0
    assert counts["outcomes"].get("compare:ok", 0) > 0


@pytest.mark.slow
def test_fuzz_long_profile(tmp_path):
    _fuzz(tmp_path, cases=10_000, seed=1)
