"""lineage.engines (the Ray Data engine, Parquet shards) and `crawl --engine`, on the local Hub.

One local Ray for the tests that need it (`ray.init(num_cpus=2)`, never local_mode), shut down
after them. They are skipped when Ray is not installed, unless LINEAGE_REQUIRE_RAY=1 (then a
missing Ray fails them: CI installs the `ray` extra).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys

import pytest

from lineage.build import build_lineage
from lineage.cli.main import main
from lineage.crawler import crawl
from lineage.engines import EngineUnavailableError, require_ray
from lineage.engines.shards import SCHEMA_VERSION, import_shards, read_shards
from lineage.store import Store
from tests.hub_helpers import BAD, GOOD, fast_retry


def _ray_missing() -> str | None:
    try:
        require_ray()
    except EngineUnavailableError as err:
        return str(err)
    return None


_MISSING = _ray_missing()
needs_ray = pytest.mark.skipif(
    _MISSING is not None and os.environ.get("LINEAGE_REQUIRE_RAY") != "1",
    reason=f"Ray is not installed: {_MISSING}",
)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's Ray tests: 2 CPUs, a small object store."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


# Ray Data's own module sets a deprecated field of its DataContext when it creates the default
# one: a DeprecationWarning raised inside ray.data.context, not by our calls.
ray_test = pytest.mark.usefixtures("local_ray")
quiet_ray = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def _crawl(store, server, cache, **kwargs):
    return crawl(
        store,
        endpoint=server.url,
        cache_dir=cache,
        token=False,
        retry=fast_retry(),
        device="cpu",
        hf_cache=False,
        **kwargs,
    )


def _blobs(db) -> dict[str, bytes]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT model_id, blob FROM signatures"))


def _statuses(db) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(db) as con:
        return {r[0]: (r[1], r[2]) for r in con.execute("SELECT id, status, reason FROM models")}


def _tree(db) -> tuple:
    with Store(db) as store:
        graph = build_lineage(store, device="cpu")
    edges = sorted((e.parent, e.child, e.relation) for e in graph.edges)
    families = sorted((n.id, n.family) for n in graph.nodes)
    return edges, families


@needs_ray
@ray_test
@quiet_ray
def test_ray_and_threads_give_identical_signatures_failures_and_tree(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo, page_size=5)
    threads_db, ray_db = tmp_path / "threads.sqlite", tmp_path / "ray.sqlite"
    with Store(threads_db) as store:
        by_threads = _crawl(store, server, tmp_path / "c1", workers=3)
    shards = tmp_path / "shards"
    with Store(ray_db) as store:
        # a cold window cache of its own: Ray reads every byte over the network too
        by_ray = _crawl(store, server, tmp_path / "c2", workers=3, engine="ray", shards_dir=shards)
        (run,) = store.runs()
        assert run.params["engine"] == "ray" and run.status == "ok"

    assert by_ray.fingerprinted == by_threads.fingerprinted == len(GOOD)
    # the models that fail are recorded with the same status and reason, never a crash
    assert by_ray.skipped_by_reason == by_threads.skipped_by_reason
    assert sum(by_ray.skipped_by_reason.values()) == len(BAD)
    assert _statuses(ray_db) == _statuses(threads_db)
    assert [(m.model_id, m.status, m.bytes_fetched) for m in by_ray.models] == [
        (m.model_id, m.status, m.bytes_fetched) for m in by_threads.models
    ]
    # byte-identical signatures, and the same tree built from either store
    ray_blobs = _blobs(ray_db)
    assert ray_blobs == _blobs(threads_db) and len(ray_blobs) == len(GOOD)
    assert _tree(ray_db) == _tree(threads_db)

    # the shards hold every model Ray tried, and import into a fresh store as the same thing
    rows = list(read_shards(shards))
    assert sorted(r.model_id for r in rows) == sorted([*GOOD, *BAD])
    assert all(r.status != "ok" or r.signature == ray_blobs[r.model_id] for r in rows)
    imported = tmp_path / "imported.sqlite"
    with Store(imported) as store:
        summary = import_shards(store, shards)
        assert (summary.fingerprinted, summary.failed) == (len(GOOD), len(BAD))
        assert import_shards(store, shards).skipped == len(GOOD)  # twice changes nothing
    assert _blobs(imported) == ray_blobs
    assert _statuses(imported) == _statuses(ray_db)
    assert SCHEMA_VERSION == 1
    # `tree` reads the imported store like any other
    assert _tree(imported) == _tree(ray_db)


@needs_ray
@ray_test
@quiet_ray
def test_second_ray_crawl_reads_nothing(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo, page_size=5)
    with Store(tmp_path / "db.sqlite") as store:
        _crawl(store, server, tmp_path / "c", engine="ray")
        again = _crawl(store, server, tmp_path / "c", engine="ray")
    # what a finished (or killed) Ray crawl stored is not fetched again
    assert (again.unchanged, again.fingerprinted, again.bytes_fetched) == (14, 0, 0)


class _Stop(Exception):
    pass


@needs_ray
@ray_test
@quiet_ray
def test_interrupted_ray_crawl_resumes_without_refetching(
    hub_env, crawl_zoo, tmp_path, monkeypatch
):
    from lineage.engines import ray_engine

    monkeypatch.setattr(ray_engine, "CHUNK", 4)  # chunks of 4 models: the unit stored
    server = hub_env.start(crawl_zoo)

    def stop_after_first_chunk(done, seen, model_id):
        if done == 4:
            raise _Stop

    with Store(tmp_path / "db.sqlite") as store:
        with pytest.raises(_Stop):
            _crawl(store, server, tmp_path / "c", engine="ray", progress=stop_after_first_chunk)
        (run,) = store.runs()
        assert run.status == "failed"
        first = {m.id for m in store.models() if m.status != "ok" or store.get_signature(m.id)}
        assert len(first) == 4  # the first chunk, stored before the stop
        server.reset_counters()
        again = _crawl(store, server, tmp_path / "c2", engine="ray")
    assert again.fingerprinted + len(first & set(GOOD)) == len(GOOD)
    resumed = {m.model_id: m for m in again.models}
    for rid in first & set(GOOD):  # stored by the interrupted run: not read again
        assert (resumed[rid].fingerprinted, resumed[rid].bytes_fetched) == (False, 0)
    assert not any(rid in path for path in server.counters.bytes_by_path for rid in first)


def test_unknown_engine_and_executor_with_ray_are_refused(tmp_path):
    from lineage.engine import ThreadExecutor

    with Store(tmp_path / "db.sqlite") as store:
        with pytest.raises(ValueError, match="engine must be one of threads, ray"):
            crawl(store, endpoint="http://127.0.0.1:9", engine="spark")
        with ThreadExecutor(1) as pool, pytest.raises(ValueError, match="executor"):
            crawl(store, endpoint="http://127.0.0.1:9", engine="ray", executor=pool)
        with pytest.raises(ValueError, match="token is not sent to Ray workers"):
            crawl(store, endpoint="http://127.0.0.1:9", engine="ray", token="hf_x")
        assert store.runs() == []


def test_cli_without_ray_says_what_to_install(tmp_path, monkeypatch, capsys):
    # Ray absent, as on an install without the extra (a None entry makes `import ray` fail)
    monkeypatch.setitem(sys.modules, "ray", None)
    db = str(tmp_path / "db.sqlite")
    argv = ["--db", db, "crawl", "--endpoint", "http://127.0.0.1:9", "--engine", "ray"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "pip install 'model-lineage[ray]'" in err and len(err.splitlines()) == 1


def test_cli_address_needs_the_ray_engine(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--db", str(tmp_path / "db.sqlite"), "crawl", "--address", "auto"])
    assert exit_.value.code == 2
    assert "add --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite").exists()


@needs_ray
@ray_test
@quiet_ray
def test_cli_crawl_on_ray_json(hub_env, crawl_zoo, tmp_path, monkeypatch, capsys):
    server = hub_env.start(crawl_zoo)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    argv = ["--db", str(tmp_path / "db.sqlite"), "crawl", "--endpoint", server.url]
    argv += ["--engine", "ray", "--json", "--limit", "4", "--device", "cpu"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["seen"], summary["fingerprinted"]) == (4, 4)
