"""Engines other than the local thread pool, and the Parquet shards they write.

`lineage.engine` is the engine every command uses (`ThreadExecutor`, the default). This package
holds what runs the same stages elsewhere: `ray_engine` (Ray Data: batches of models fingerprinted
on a cluster, written as Parquet shards) and `shards` (the shard schema, and `import_shards`, the
one way shards reach the store). Ray is an optional extra, imported only when chosen.
"""

from __future__ import annotations

from lineage.errors import LineageError

__all__ = ["ENGINES", "EngineUnavailableError", "require_ray"]

# The engines `lineage crawl --engine` accepts; the first is the default.
ENGINES = ("threads", "ray")


class EngineUnavailableError(LineageError):
    """The chosen engine's optional packages are not installed."""


def require_ray() -> None:
    """Check that Ray Data and pyarrow import.

    Raises:
        EngineUnavailableError: one line saying which extra to install.
    """
    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as err:
        raise EngineUnavailableError(
            f"--engine ray needs Ray Data and pyarrow ({err.name or 'ray'} is not installed): "
            "pip install 'model-lineage[ray]'"
        ) from None
