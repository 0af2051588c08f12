"""The command line: a thin shell over library functions (`lineage --help`)."""
