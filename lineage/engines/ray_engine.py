"""Fingerprinting on Ray: the thread engine's stages, run as Ray Data batches, written as shards.

The driver lists and decides what to read exactly as a local crawl does; the models that need
reading go to Ray Data a chunk at a time:

    ids -> ray.data.from_items -> map_batches(fingerprint_batch): open and fingerprint each
    model of a batch with `lineage.engine.Engine` on a few threads (the I/O waits overlap) ->
    write_parquet (one shard per block, `lineage.engines.shards` schema) -> the driver reads the
    chunk's shards back and stores each model through `store_outcome` (SQLite has one writer)

A chunk is the unit stored: killed, a Ray crawl loses at most the chunk in flight, and the next
crawl skips every model already stored (the store's incremental rule, as for threads). Workers
never receive a Hub client or a token: `HubOpener` carries the endpoint, retry policy and cache
folders, and each worker uses its own huggingface_hub token (HF_TOKEN on that node) or none.
Ray is imported only here, and only when a function of this module runs.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from fingerprint.signature import SignatureParams
from hub.hubsource import HubClient, open_hub_model
from hub.records import ModelRecord
from hub.remote import ReadStats
from hub.retry import RetryPolicy
from hub.window_cache import WindowCache
from lineage.engine import Engine, OpenedModel, ThreadExecutor
from lineage.engines import require_ray
from lineage.engines.shards import ShardRow, arrow_schema, read_shards, record_from_json
from lineage.engines.shards import record_to_json as _record_json
from lineage.errors import LineageError

__all__ = ["HubOpener", "RayStage", "fingerprint_on_ray", "ray_session"]

J = TypeVar("J")

# Models per Ray Data run: what a kill can lose, traded against a run's start-up (about a second).
CHUNK = 256
# Models per batch (one Ray task): enough to keep a batch's threads busy.
BATCH = 8
# The object store of a Ray this module starts: rows are small (a signature is ~0.5 MB), and a
# 2-core laptop should not give a third of its memory to Ray's default.
LOCAL_OBJECT_STORE = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HubOpener:
    """Opens a listed Hub model on a Ray worker (picklable: no client, no token inside).

    Attributes:
        endpoint: the Hub URL.
        anonymous: True sends no token; False lets each worker use its own huggingface_hub
            token (HF_TOKEN or a stored login on that node).
        retry: the retry policy.
        timeout: seconds per connect and per read.
        cache_root: the window cache folder (None: no cache); must be reachable from workers.
        hf_cache: the HF hub cache to read snapshots from (False: never).
    """

    endpoint: str
    anonymous: bool
    retry: RetryPolicy
    timeout: float
    cache_root: str | None
    hf_cache: str | bool

    @classmethod
    def of(
        cls,
        client: HubClient,
        cache: WindowCache | None,
        hf_cache: str | os.PathLike[str] | None | bool,
        *,
        token: str | bool | None,
        token_available: bool,
    ) -> HubOpener:
        """The opener for a driver's client, window cache and HF cache choice.

        Raises:
            LineageError: `token` is a string (it is never shipped to workers).
        """
        if isinstance(token, str):
            raise LineageError(
                "a token is not sent to Ray workers: set HF_TOKEN on every node (or log in there) "
                "and crawl with token=None"
            )
        if hf_cache is True:
            from hub.cache import default_cache_dir

            hf_cache = default_cache_dir()  # the driver's, so workers read the same snapshots
        return cls(
            endpoint=client.endpoint,
            anonymous=token is False or not token_available,
            retry=client.retry,
            timeout=client.timeout,
            cache_root=str(cache.root) if cache is not None else None,
            hf_cache=str(hf_cache) if hf_cache else False,
        )

    def client(self) -> HubClient:
        """A client for this opener (built on the worker)."""
        return HubClient(
            self.endpoint, False if self.anonymous else None, retry=self.retry, timeout=self.timeout
        )

    def __call__(self, info: Any, stats: ReadStats, client: HubClient) -> OpenedModel:
        cache = WindowCache(self.cache_root) if self.cache_root is not None else None
        return open_hub_model(info, client=client, cache=cache, hf_cache=self.hf_cache, stats=stats)


@dataclass(frozen=True, slots=True)
class RayStage:
    """What a Ray batch runs: the thread engine's open-and-fingerprint stage, picklable.

    Attributes:
        opener: opens one model on a worker.
        unreadable: (model id, error) -> the reason stored when bytes do not decode.
        params: signature parameters.
        device: where signatures are computed (resolved: `cpu` or `cuda`).
        threads: threads inside one batch (overlapping its models' I/O).
    """

    opener: HubOpener
    unreadable: Callable[[str, Exception], str]
    params: SignatureParams
    device: str
    threads: int = 4


@dataclass(slots=True)
class _Work:
    """One model inside a batch: its listed record, its listing entry and what reading cost."""

    listed: ModelRecord
    info: Any
    stats: ReadStats


def fingerprint_batch(batch: Any, stage: RayStage) -> Any:
    """A Ray Data batch (pyarrow table of `record`, `info`) -> its shard rows (pyarrow table).

    Runs on a Ray worker; every model gets a row, a failure included (never an exception).
    """
    import pyarrow as pa

    cols = batch.to_pydict()
    work = [
        _Work(record_from_json(rec), pickle.loads(info), ReadStats())
        for rec, info in zip(cols["record"], cols["info"], strict=True)
    ]
    client = stage.opener.client()
    with ThreadExecutor(max(1, min(stage.threads, len(work))), name="ray-batch") as pool:
        engine: Engine[_Work] = Engine(
            open_model=lambda w: stage.opener(w.info, w.stats, client),
            model_id=lambda w: w.listed.id,
            unreadable=stage.unreadable,
            executor=pool,
            params=stage.params,
            device=stage.device,
        )
        rows = [ShardRow.of(o, o.job.listed, o.job.stats).to_dict() for o in engine.run(work)]
    return pa.Table.from_pylist(rows, schema=arrow_schema())


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """A Ray to run on: the one already initialised, else `address`'s cluster, else a local one.

    A Ray started here is shut down on leaving; one that was running is left running.

    Raises:
        EngineUnavailableError: Ray Data or pyarrow is not installed.
    """
    require_ray()
    import ray
    from ray.data import DataContext

    started = not ray.is_initialized()
    if started:
        local = address is None
        ray.init(
            address=address,
            num_cpus=num_cpus if local else None,
            object_store_memory=LOCAL_OBJECT_STORE if local else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the crawl's own progress line says how far it is
    ctx.print_on_execution_start = False
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def fingerprint_on_ray(
    jobs: Iterable[J],
    *,
    needs_work: Callable[[J], bool],
    listed: Callable[[J], tuple[ModelRecord, Any]],
    stage: RayStage,
    address: str | None = None,
    num_cpus: int | None = None,
    shards_dir: str | os.PathLike[str] | None = None,
    chunk: int | None = None,
    batch: int = BATCH,
) -> Iterator[tuple[J, ShardRow | None]]:
    """Each job with its shard row, in job order a chunk at a time (None: needed no work).

    Args:
        jobs: the jobs, lazily (a listing).
        needs_work: whether a job's weights must be read.
        listed: job -> (its listed record, its listing entry, which must pickle).
        stage: what each batch runs.
        address: a Ray cluster (`ray.init(address=...)`); None starts a local Ray on
            `num_cpus` CPUs (default all), unless Ray is already initialised.
        num_cpus: CPUs of a local Ray this starts.
        shards_dir: where the shards go, `run-<time>-<id>/chunk-N/` under it (shared storage on a
            cluster); None: a temporary folder removed at the end.
        chunk: models per Ray Data run (the unit stored); None: `CHUNK`.
        batch: models per batch (one Ray task).
    """
    chunk = chunk or CHUNK
    with ray_session(address, num_cpus), _folder(shards_dir) as root:
        todo: list[J] = []
        done = 0
        for job in jobs:
            if not needs_work(job):
                yield job, None
                continue
            todo.append(job)
            if len(todo) >= chunk:
                yield from _run_chunk(todo, listed, stage, root / f"chunk-{done:06d}", batch)
                done, todo = done + 1, []
        if todo:
            yield from _run_chunk(todo, listed, stage, root / f"chunk-{done:06d}", batch)


def _run_chunk(
    jobs: list[J],
    listed: Callable[[J], tuple[ModelRecord, Any]],
    stage: RayStage,
    folder: Path,
    batch: int,
) -> Iterator[tuple[J, ShardRow]]:
    import ray.data

    items = []
    for job in jobs:
        record, info = listed(job)
        items.append({"record": _record_json(record), "info": pickle.dumps(info)})
    blocks = max(1, -(-len(items) // batch))
    ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        partial(fingerprint_batch, stage=stage), batch_size=batch, batch_format="pyarrow"
    ).write_parquet(str(folder))
    rows = {row.model_id: row for row in read_shards(folder)}
    for job in jobs:
        record, _ = listed(job)
        row = rows.get(record.id)
        if row is None:  # Ray lost a block without raising: never store a guess
            raise LineageError(f"{record.id}: the Ray run wrote no row for it; run the crawl again")
        yield job, row


@contextmanager
def _folder(shards_dir: str | os.PathLike[str] | None) -> Iterator[Path]:
    if shards_dir is not None:
        Path(shards_dir).mkdir(parents=True, exist_ok=True)
        # a folder of its own per run: shards of an earlier run are never read as this one's
        stamp = time.strftime("%Y%m%dT%H%M%S")
        yield Path(tempfile.mkdtemp(prefix=f"run-{stamp}-", dir=shards_dir))
        return
    with tempfile.TemporaryDirectory(prefix="lineage-shards-") as tmp:
        yield Path(tmp)
