"""DESIGN: torch and matplotlib are imported where used, not at CLI start-up; a command's
choices, handler and long help load only when that command is used."""

import subprocess
import sys

HEAVY = ("torch", "matplotlib", "pandas", "scipy", "numpy", "huggingface_hub")
COMMAND_MODULES = (
    "fingerprint.device",
    "lineage.present",
    "lineage.cli.commands",
    "lineage.anomalies",
    "hub.client",
)


def test_help_imports_no_heavy_library_and_no_command_module():
    code = (
        "import sys\n"
        "from lineage.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY + COMMAND_MODULES!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "LOADED="


def test_user_errors_exit_1_with_one_line(tmp_path):
    from lineage.store import Store

    with Store(tmp_path / "x.db"):
        pass  # an empty database: readers refuse a missing one before they look for the model
    out = subprocess.run(
        [sys.executable, "-m", "lineage", "--db", str(tmp_path / "x.db"), "audit", "no/such-model"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "no/such-model" in out.stderr


def test_usage_errors_exit_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lineage", "tree", "--format", "xml"], capture_output=True, text=True
    )
    assert out.returncode == 2
