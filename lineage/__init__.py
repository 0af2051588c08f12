"""Lineage of models: store, all-pairs, graph, anomalies, exports, reports, CLI.

Everything the CLI does is one of these calls (`lineage.cli.table` names which, and
tests/test_exported_members.py checks it). The public surface is `__all__`; names load lazily,
so `lineage --help` imports no heavy library.
"""

from importlib import import_module

_EXPORTS = {
    "Store": "lineage.store",
    "add_local": "lineage.pipeline",
    "fingerprint_models": "lineage.pipeline",
    "compare_refs": "lineage.pipeline",
    "compare_adapters": "lineage.adapters",
    "compare_finetunes": "lineage.adapters",
    "crawl": "lineage.crawler",
    "scan": "lineage.scanner",
    "import_shards": "lineage.engines.shards",
    "build_lineage": "lineage.build",
    "audit": "lineage.build",
    "build_graph": "lineage.graph",
    "GraphParams": "lineage.graph",
    "Confidence": "lineage.graph",
    "significant_pairs": "lineage.allpairs",
    "LineageGraph": "lineage.records",
    "Node": "lineage.records",
    "Edge": "lineage.records",
    "Relative": "lineage.records",
    "Cousin": "lineage.records",
    "Anomaly": "lineage.records",
    "export": "lineage.present.export",
    "to_networkx": "lineage.present.export",
    "write_atlas": "lineage.present.atlas",
    "build_report": "lineage.present.report",
    "models_frame": "lineage.frames",
    "pairs_frame": "lineage.frames",
    "signatures_frame": "lineage.frames",
    "write_all_figures": "lineage.present.plots",
    "draw_figure": "lineage.present.figures",
    "generate_zoo": "lineage.lab.zoo",
    "run_demo": "lineage.lab.demo",
    "LineageError": "lineage.errors",
    "StoreError": "lineage.errors",
    "UnknownModelError": "lineage.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lineage' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
