"""The command line: a thin shell over library functions (`lineage --help`); the entry point
is `lineage.cli.main:main`."""
