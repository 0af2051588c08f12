"""The command line: a thin shell over library functions (`lineage --help`).

`main` is re-exported here for entry points written as `lineage.cli:main`.
"""

from lineage.cli.main import main

__all__ = ["main"]
