"""DESIGN: torch and matplotlib are imported where used, not at CLI start-up."""

import subprocess
import sys


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from lineage.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'pandas', 'scipy', 'huggingface_hub') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="


def test_user_errors_exit_1_with_one_line(tmp_path):
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
