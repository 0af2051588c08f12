"""The layer map of docs/design.md, checked against every import in the code.

Each rule names a group of modules and the modules it must never import (at top level or inside
a function: a lazy import is still an arrow). A new forbidden arrow fails here with the file and
line, so the map cannot drift from the code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hub", "fingerprint", "lineage")


@dataclass(frozen=True)
class Rule:
    """Modules under `inside` (dotted prefixes), less those under `exempt`, never import modules
    under `never`, less those under `allowed`."""

    why: str
    inside: tuple[str, ...]
    never: tuple[str, ...]
    exempt: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()


# lineage's package facade (`lineage/__init__.py`) maps public names to modules lazily, as text;
# it imports nothing, so no rule needs to exempt it.
RULES = (
    Rule("hub and fingerprint never import each other", ("hub",), ("fingerprint", "lineage")),
    Rule("hub and fingerprint never import each other", ("fingerprint",), ("hub", "lineage")),
    Rule(
        "the Hub emulation imports nothing else of hub",
        ("hub.emulator",),
        ("hub", "fingerprint", "lineage"),
        allowed=("hub.emulator",),
    ),
    Rule(
        "the real client never depends on the emulation",
        ("hub",),
        ("hub.emulator",),
        exempt=("hub.emulator",),
    ),
    Rule(
        "lineage core never imports the lab, the presentation or the CLI",
        ("lineage",),
        ("lineage.lab", "lineage.present", "lineage.cli"),
        exempt=("lineage.lab", "lineage.present", "lineage.cli", "lineage.__main__"),
    ),
    Rule(
        "the presentation never imports the lab or the CLI",
        ("lineage.present",),
        ("lineage.lab", "lineage.cli"),
    ),
)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in a file, relative ones resolved."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports pkg.mod when that is a module
            out.append((node.lineno, base))
            out += [
                (node.lineno, f"{base}.{a.name}")
                for a in node.names
                if _is_module(f"{base}.{a.name}", root)
            ]
    return out


def _is_module(dotted: str, root: Path) -> bool:
    p = root.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def violations(root: Path = ROOT, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Every import that breaks a rule, as `file:line imports module: why` (one per line)."""
    found: dict[tuple[str, int, str], str] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            module = _module_name(path, root)
            where = path.relative_to(root).as_posix()
            for rule in rules:
                if not _under(module, rule.inside) or _under(module, rule.exempt):
                    continue
                for line, target in imports_of(path, root):
                    if _under(target, rule.never) and not _under(target, rule.allowed):
                        key = (where, line, rule.why)
                        found[key] = max(found.get(key, ""), target, key=len)
    return [f"{w}:{line} imports {t}: {why}" for (w, line, why), t in sorted(found.items())]


def test_no_forbidden_import_arrow():
    assert violations() == []


@pytest.mark.parametrize(
    ("where", "code", "expected"),
    [
        (
            "hub/a.py",
            "def f():\n    from fingerprint.signature import S\n",
            "hub/a.py:2 imports fingerprint.signature",
        ),
        ("fingerprint/a.py", "import hub.local\n", "fingerprint/a.py:1 imports hub.local"),
        ("hub/emulator/a.py", "from hub import card\n", "hub/emulator/a.py:1 imports hub.card"),
        (
            "hub/emulator/b.py",
            "from ..records import R\n",
            "hub/emulator/b.py:1 imports hub.records",
        ),
        (
            "lineage/build.py",
            "from lineage.lab import zoo\n",
            "lineage/build.py:1 imports lineage.lab.zoo",
        ),
        (
            "lineage/present/x.py",
            "from lineage.cli.main import main\n",
            "lineage/present/x.py:1 imports lineage.cli.main",
        ),
    ],
)
def test_a_forbidden_arrow_is_caught(tmp_path, where, code, expected):
    # the checker itself must be able to fail: plant one arrow in a small tree and look for it
    for pkg in (*PACKAGES, "hub/emulator", "lineage/lab", "lineage/cli", "lineage/present"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    for mod in ("hub/card.py", "hub/records.py", "lineage/lab/zoo.py", "lineage/cli/main.py"):
        (tmp_path / mod).write_text("")
    (tmp_path / where).write_text(code)
    found = violations(tmp_path)
    assert [v.split(":", 2)[0] + ":" + v.split(":", 2)[1].split(" ")[0] for v in found] == [
        expected.split(" imports")[0]
    ]
    assert any(v.startswith(expected) for v in found), found


def test_allowed_arrows_pass(tmp_path):
    for pkg in (*PACKAGES, "lineage/lab"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "lineage/lab/zoo.py").write_text("from lineage.build import x\nimport hub.local\n")
    (tmp_path / "lineage/build.py").write_text(
        "from fingerprint.comparison import c\nfrom hub import records\n"
    )
    assert violations(tmp_path) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_covered_by_a_rule(package):
    assert any(_under(package, r.inside) for r in RULES)
