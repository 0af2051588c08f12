"""lineage.crawler (crawl, scan), lineage.match and lineage.cli.crawl against the local Hub server,
through the real huggingface_hub client, on 127.0.0.1 only."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from fingerprint.comparison import compare
from fingerprint.errors import IncompatibleSignaturesError
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.emulator.faults import Faults
from hub.hubsource import children_filter
from hub.local import open_local_model
from lineage.cli.main import build_parser
from lineage.crawler import crawl, scan
from lineage.match import SignatureIndex
from lineage.store import Store
from tests.factory import MemorySource, noisy, write_model
from tests.hub_helpers import (
    BAD,
    BASE,
    FINETUNES,
    GOOD,
    TOKEN,
    card,
    fast_retry,
    meta,
    resolve_bytes,
    small,
)

ROOT = Path(__file__).resolve().parents[2]


def run_crawl(store, server, cache, **kwargs):
    kwargs.setdefault("retry", fast_retry())
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("hf_cache", False)
    return crawl(store, endpoint=server.url, cache_dir=cache, token=False, **kwargs)


def local_blob(zoo: Path, repo_id: str) -> bytes:
    model = open_local_model(zoo / "repos" / repo_id, model_id=repo_id)
    return compute_signature(model, device="cpu").to_bytes()


def copy_zoo(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---- crawl --------------------------------------------------------------------------------------


def test_crawl_records_every_model_and_goes_on(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo, page_size=4)
    with Store(tmp_path / "db.sqlite") as store:
        summary = run_crawl(store, server, tmp_path / "cache", workers=3)
        assert (summary.seen, summary.new, summary.changed, summary.unchanged) == (14, 14, 0, 0)
        assert summary.fingerprinted == len(GOOD)
        assert summary.skipped_by_reason == {
            "gated": 1,
            "malformed": 1,
            "no_safetensors": 1,
            "not_found": 1,
        }
        # every network byte of weight files is accounted for, per model and in all
        assert summary.bytes_fetched == resolve_bytes(server) - _error_bodies(server)
        assert summary.bytes_fetched == sum(m.bytes_fetched for m in summary.models)
        for rid, status in BAD.items():
            rec = store.require_model(rid)
            assert rec.status == status and rid in rec.reason
            assert store.get_signature(rid) is None
        for rid in GOOD:
            rec = store.require_model(rid)
            assert rec.status == "ok" and rec.source == "hub" and rec.path is None
            # the hub-crawled signature is the local-folder signature, bit for bit
            assert store.get_signature(rid).blob == local_blob(crawl_zoo, rid)
        ft = store.require_model("org/ft-1")
        assert [(b.id, b.relation) for b in ft.declared_bases] == [(BASE, "finetune")]
        assert store.require_model("org/adapter").extra["adapter_base"] == BASE
        (run,) = store.runs()
        assert (run.kind, run.status) == ("crawl", "ok")
        assert run.summary["fingerprinted"] == len(GOOD)


def test_repo_deleted_after_the_listing_is_not_found_and_the_rest_completes(
    hub_env, crawl_zoo, tmp_path
):
    zoo = copy_zoo(crawl_zoo, tmp_path / "zoo")
    server = hub_env.start(zoo)
    gone = "other/root"

    def delete_after_first(done, total, item):
        # one worker reads at most two models ahead: "other/root" (9th) is listed, not yet read
        if done == 1:
            shutil.rmtree(zoo / "repos" / gone)
            doc = json.loads((zoo / "manifest.json").read_text())
            doc["models"] = [m for m in doc["models"] if m["id"] != gone]
            (zoo / "manifest.json").write_text(json.dumps(doc))
            server.store.invalidate()

    with Store(tmp_path / "db.sqlite") as store:
        summary = run_crawl(
            store, server, tmp_path / "cache", workers=1, progress=delete_after_first
        )
        rec = store.require_model(gone)
        assert rec.status == "not_found" and "was not found on the Hub" in rec.reason
        assert summary.skipped_by_reason["not_found"] == 2  # with org/disabled
        assert summary.fingerprinted == len(GOOD) - 1


def _error_bodies(server) -> int:
    """Bytes of the JSON error answers (the gated file's 401) under /resolve/ paths."""
    return sum(
        n
        for p, n in server.counters.bytes_by_path.items()
        if "/resolve/" in p and p.startswith("/org/gated/")
    )


def test_second_crawl_fetches_zero_window_bytes(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo, page_size=5)
    cache = tmp_path / "cache"
    with Store(tmp_path / "db.sqlite") as store:
        run_crawl(store, server, cache)
        server.reset_counters()
        again = run_crawl(store, server, cache)
        assert (again.unchanged, again.fingerprinted, again.bytes_fetched) == (14, 0, 0)
        # unchanged models with a signature cost nothing beyond the listing
        assert set(server.counters.bytes_by_path) == {"/api/models"}
        assert server.counters.requests == 3
        assert again.skipped_by_reason == {
            "gated": 1,
            "malformed": 1,
            "no_safetensors": 1,
            "not_found": 1,
        }
    # a new database with the same window cache: fingerprinted again, no weight bytes fetched
    server.reset_counters()
    with Store(tmp_path / "fresh.sqlite") as store:
        fresh = run_crawl(store, server, cache)
        assert fresh.fingerprinted == len(GOOD) and fresh.bytes_fetched == 0
        assert fresh.bytes_cached > 0
        assert 206 not in server.counters.statuses


def test_changed_model_is_fingerprinted_again(hub_env, crawl_zoo, tmp_path):
    zoo = copy_zoo(crawl_zoo, tmp_path / "zoo")
    server = hub_env.start(zoo)
    with Store(tmp_path / "db.sqlite") as store:
        run_crawl(store, server, tmp_path / "cache")
        before = store.get_signature("org/ft-1")
        write_model(zoo / "repos/org/ft-1", noisy(small(0), 0.02, 99), card=card([BASE]))
        server.store.invalidate()
        summary = run_crawl(store, server, tmp_path / "cache")
        assert (summary.changed, summary.unchanged, summary.fingerprinted) == (1, 13, 1)
        after = store.get_signature("org/ft-1")
        assert after.revision == store.require_model("org/ft-1").revision != before.revision
        assert after.blob == local_blob(zoo, "org/ft-1") != before.blob


def test_no_fingerprint_then_fingerprint(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo)
    with Store(tmp_path / "db.sqlite") as store:
        meta_only = run_crawl(store, server, tmp_path / "cache", fingerprint=False)
        assert (meta_only.new, meta_only.fingerprinted, meta_only.bytes_fetched) == (14, 0, 0)
        assert resolve_bytes(server) == 0 and not store.signatures()
        full = run_crawl(store, server, tmp_path / "cache")
        # unchanged commits, but no signature yet: read now
        assert (full.unchanged, full.fingerprinted) == (14, len(GOOD))


def test_children_of_a_base_and_since(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo, page_size=3)
    with Store(tmp_path / "db.sqlite") as store:
        kids = run_crawl(
            store, server, tmp_path / "cache", filters=[children_filter(BASE, "finetune")]
        )
        assert kids.seen == 4 and {m.id for m in store.models()} == set(FINETUNES)
        newest = run_crawl(store, server, tmp_path / "cache", sort="created", since="2024-01-12")
        assert [m.model_id for m in newest.models] == list(reversed(list(BAD)))[:3]
        authored = run_crawl(store, server, tmp_path / "cache", authors=["other"], limit=5)
        assert [m.model_id for m in authored.models] == ["other/root"]


def test_rate_limits_server_errors_resets_and_truncation_are_survived(hub_env, crawl_zoo, tmp_path):
    faults = Faults(
        seed=3,
        rate_429=0.1,
        rate_5xx=0.1,
        rate_truncate=0.05,
        rate_reset=0.05,
        retry_after=2,
        pattern="/resolve/|/paths-info/",
    )
    server = hub_env.start(crawl_zoo, faults=faults)
    retry = fast_retry(attempts=12)
    with Store(tmp_path / "db.sqlite") as store:
        summary = run_crawl(store, server, tmp_path / "cache", retry=retry, workers=4)
        injected = server.counters.faults
        assert injected.get("429") and injected.get("truncate") and injected.get("reset")
        assert sum(injected.get(k, 0) for k in ("500", "502", "503")) > 0
        assert summary.fingerprinted == len(GOOD)
        assert set(summary.skipped_by_reason) == set(BAD.values())
        assert 2.0 in retry.sleep  # Retry-After honoured
        for rid in GOOD:
            assert store.get_signature(rid).blob == local_blob(crawl_zoo, rid)


def test_endpoint_down_stops_the_crawl_with_a_network_error(hub_env, crawl_zoo, tmp_path):
    from hub.errors import NetworkError

    faults = Faults(rate_5xx=1.0, pattern="/paths-info/")
    server = hub_env.start(crawl_zoo, faults=faults)
    with Store(tmp_path / "db.sqlite") as store:
        with pytest.raises(NetworkError, match="in a row"):
            run_crawl(store, server, tmp_path / "cache", retry=fast_retry(attempts=2), workers=2)
        (run,) = store.runs()
        assert run.status == "failed" and run.summary["skipped_by_reason"]["network"] == 8


def test_interrupted_crawl_resumes_to_every_model_once_with_a_signature(
    hub_env, crawl_zoo, tmp_path
):
    server = hub_env.start(crawl_zoo, page_size=4)
    db = tmp_path / "db.sqlite"

    def stop_after_four(done, total, item):
        if done == 4:
            raise KeyboardInterrupt

    with Store(db) as store:
        with pytest.raises(KeyboardInterrupt):
            run_crawl(store, server, tmp_path / "cache", workers=2, progress=stop_after_four)
        assert len(store.models()) == 4
        assert store.runs()[0].status == "interrupted"
    with Store(db) as store:
        summary = run_crawl(store, server, tmp_path / "cache", workers=2)
        assert summary.unchanged == 4 and summary.new == 10
        _assert_complete(store, crawl_zoo)


def _assert_complete(store: Store, zoo: Path) -> None:
    ids = [m.id for m in store.models()]
    assert sorted(ids) == sorted([*GOOD, *BAD]) and len(ids) == len(set(ids))
    for rid in GOOD:
        rec = store.require_model(rid)
        assert store.has_current_signature(rid, rec.revision)
        assert store.get_signature(rid).blob == local_blob(zoo, rid)
    for rid, status in BAD.items():
        assert store.require_model(rid).status == status


def test_killed_crawl_resumes(hub_env, crawl_zoo, tmp_path):
    # slow window reads so that the kill lands mid-crawl
    server = hub_env.start(crawl_zoo, faults=Faults(latency_s=0.02, pattern="/resolve/"))
    db = tmp_path / "db.sqlite"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:] = {[str(ROOT), *sys.path]!r}  # the same packages as this test process
        from lineage.crawler import crawl
        from lineage.store import Store
        with Store({str(db)!r}) as store:
            crawl(store, endpoint={server.url!r}, cache_dir={str(tmp_path / "cache")!r},
                  device="cpu", workers=1, token=False, hf_cache=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and _signatures(db) >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the crawl finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with Store(db) as store:
        before = len(store.signatures())
        assert 2 <= before < len(GOOD)
        assert store.runs()[0].status == "running"  # the killed run never finished
        summary = run_crawl(store, server, tmp_path / "cache")
        assert summary.fingerprinted == len(GOOD) - before
        _assert_complete(store, crawl_zoo)
        # the next run marked the dead one as killed, and finished its own
        assert [r.status for r in store.runs()] == ["killed", "ok"]


def _signatures(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM signatures").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def hf_backoff_without_sleep(monkeypatch):
    """huggingface_hub 2.x retries listings itself with its own `time.sleep`, which it offers
    no way to inject: make those waits instant. (Our own retries are injected: `fast_retry`.)"""
    from huggingface_hub.utils import _http

    from tests.hub_helpers import NoSleep

    monkeypatch.setattr(_http, "time", NoSleep())


def test_token_never_appears_anywhere(
    hub_env, crawl_zoo, tmp_path, monkeypatch, capsys, caplog, hf_backoff_without_sleep
):
    caplog.set_level(logging.DEBUG)
    server = hub_env.start(
        crawl_zoo, tokens=[TOKEN], faults=Faults(rate_5xx=1.0, pattern="/org/ft-2/")
    )
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    db = tmp_path / "db.sqlite"
    with Store(db) as store:
        # the token comes from HF_TOKEN (token=None); the failing model's retries are injected
        crawl(store, endpoint=server.url, device="cpu", retry=fast_retry(attempts=2))
        # the commands print every stored reason, the failing model's included
        rc = _cli(store, ["crawl", "--endpoint", server.url, "--no-fingerprint"])
        assert rc == 0
        rc = _cli(store, ["scan", "--endpoint", server.url, "--json", "--limit", "3"])
        assert rc == 0
        # the token was used: the gated model was read; the failing one has a reason
        assert store.require_model("org/gated").status == "ok"
        failed = store.require_model("org/ft-2")
        assert failed.status == "network" and "HTTP 50" in failed.reason
        reasons = [m.reason for m in store.models()]
    out = capsys.readouterr()
    assert "skipped org/ft-2:" in out.err  # the CLI printed the failure's reason
    texts = [out.out, out.err, caplog.text, *reasons]
    dump = "\n".join(sqlite3.connect(db).iterdump())
    # the database and what lies beside it: its WAL, the scan's sketch index (a folder)
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("db.sqlite*/**/*") if p.is_file())
    raw += b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*") if p.is_file())
    assert "org/gated" in dump  # the dump is real
    for text in [*texts, dump]:
        assert TOKEN not in text
    assert TOKEN.encode() not in raw
    for path in (tmp_path / "lc").rglob("*"):
        assert TOKEN not in path.name
    # the exception a failing read raises does not carry it either
    from hub.errors import NetworkError
    from hub.hubsource import HubClient, open_hub_model

    with pytest.raises(NetworkError) as info:
        open_hub_model("org/ft-2", client=HubClient(server.url, retry=fast_retry(attempts=2)))
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


# ---- scan ---------------------------------------------------------------------------------------


def _scan_zoo(root: Path) -> Path:
    repos = root / "repos"
    base = small(0)
    write_model(repos / BASE, base, card=card())
    write_model(repos / "other/root", small(7), card=card())
    models = [meta(BASE, 0), meta("other/root", 1)]
    (root / "manifest.json").write_text(json.dumps({"models": models}))
    return root


def _upload(root: Path, repo_id: str, tensors, created: str, bases=()) -> None:
    write_model(root / "repos" / repo_id, tensors, card=card(list(bases)))
    doc = json.loads((root / "manifest.json").read_text())
    doc["models"].append({**meta(repo_id, len(doc["models"])), "createdAt": created})
    (root / "manifest.json").write_text(json.dumps(doc))


def test_scan_matches_new_uploads_and_checks_declared_bases(hub_env, tmp_path):
    zoo = _scan_zoo(tmp_path / "zoo")
    server = hub_env.start(zoo)
    cache = tmp_path / "cache"
    with Store(tmp_path / "db.sqlite") as store:
        run_crawl(store, server, cache)
        base = small(0)
        _upload(zoo, "new/ft", noisy(base, 0.01, 1), "2024-06-01T00:00:00.000Z", [BASE])
        _upload(zoo, "new/liar", noisy(base, 0.01, 2), "2024-06-02T00:00:00.000Z", ["other/root"])
        fresh = small(42)
        _upload(zoo, "new/fresh", fresh, "2024-06-03T00:00:00.000Z")
        _upload(zoo, "new/fresh-child", noisy(fresh, 0.01, 3), "2024-06-04T00:00:00.000Z")
        _upload(zoo, "new/mystery", small(43), "2024-06-05T00:00:00.000Z", ["org/unknown"])
        server.store.invalidate()
        results = list(
            scan(
                store,
                endpoint=server.url,
                since="2024-05-01",
                device="cpu",
                cache_dir=cache,
                token=False,
                retry=fast_retry(),
                hf_cache=False,
            )
        )
        by_id = {r.model_id: r for r in results}
        assert [r.model_id for r in results] == [
            "new/mystery",
            "new/fresh-child",
            "new/fresh",
            "new/liar",
            "new/ft",
        ]
        ft = by_id["new/ft"]
        assert ft.declared_agrees is True and ft.undeclared == ()
        (to_base,) = [m for m in ft.matches if m.model_id == BASE]
        assert to_base.verdict == "derived" and to_base.p_value < 1e-10 and to_base.overlap > 0.5
        liar = by_id["new/liar"]
        assert liar.declared_agrees is False and BASE in liar.undeclared
        assert "other/root" not in {m.model_id for m in liar.matches}
        # the earlier of two new uploads matches the later one (indexed during the scan), which
        # is its child, not an undeclared base
        parent = by_id["new/fresh"]
        assert [m.model_id for m in parent.matches] == ["new/fresh-child"]
        assert parent.undeclared == () and parent.declared_agrees is None
        child = by_id["new/fresh-child"]
        assert child.matches == () and child.declared_agrees is None
        mystery = by_id["new/mystery"]
        assert mystery.matches == () and mystery.declared_agrees is None
        assert mystery.to_dict()["declared_base"] == [{"id": "org/unknown", "relation": None}]
        for rid in by_id:
            assert store.get_signature(rid) is not None
        assert [r.kind for r in store.runs()] == ["crawl", "scan"]
        assert store.runs()[1].status == "ok" and store.runs()[1].summary["scanned"] == 5


# ---- the index ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def family() -> list[Signature]:
    """A base, three fine-tunes, a chain, and eight unrelated models of the same architecture."""
    base = small(0)
    tensors = {"base": base}
    for i in range(1, 4):
        tensors[f"ft-{i}"] = noisy(base, 0.01, i)
    tensors["chain"] = noisy(tensors["ft-1"], 0.01, 50)
    for i in range(8):
        tensors[f"other-{i}"] = small(100 + i)
    sigs = []
    for name, t in tensors.items():
        sig = compute_signature(MemorySource(name, t), device="cpu")
        sigs.append(sig)
    return sigs


def test_index_counts_equal_pairwise_intersections(family):
    index = SignatureIndex.from_signatures(family)
    for query in family[:5]:
        shared, ks, ns = index.counts(query)
        for row, other in enumerate(family):
            pair = compare(query, other)
            assert shared[row] == sum(s.shared for s in pair.per_slot)
            assert int((ks[:, row] > 0).sum()) == pair.slots_compared


def test_index_matches_agree_with_compare_and_cost_only_the_significant(family):
    # The index loads a candidate's full signature only to compare it: count the loads.
    by_id = {s.model_id: s for s in family}
    calls = []

    def load(model_id):
        calls.append(model_id)
        return by_id[model_id]

    index = SignatureIndex(family[0].params, loader=load)
    for sig in family:
        index.add(sig.model_id, sig)
    alpha = 1e-4 / len(family)
    real = compare
    for query in family:
        calls.clear()
        found = index.matches(query, exclude=[query.model_id])
        expected = {
            o.model_id
            for o in family
            if o.model_id != query.model_id and real(query, o).p_value <= alpha
        }
        assert {m.model_id for m in found} == expected
        # full comparisons only for the significant candidates, never for the N - 1 others
        assert sorted(calls) == sorted(expected)
        for m in found:
            assert m.p_value == pytest.approx(real(query, by_id[m.model_id]).p_value)
            assert m.verdict in ("derived", "identical")
    base_hits = {m.model_id for m in index.matches(family[0], exclude=["base"])}
    assert base_hits == {"ft-1", "ft-2", "ft-3", "chain"}
    assert all(m.p_value <= alpha for m in index.matches(family[0], exclude=["base"]))


def test_index_add_replaces_and_refuses_other_params(family):
    index = SignatureIndex.from_signatures(family[:6])
    assert len(index) == 6 and "base" in index
    # re-index "ft-1" with an unrelated signature: it no longer matches the base
    unrelated = family[8]
    index.add("ft-1", unrelated)
    assert len(index) == 6
    ids = {m.model_id for m in index.matches(family[0], exclude=["base"])}
    assert "ft-1" not in ids and "ft-2" in ids
    other = compute_signature(
        MemorySource("x", small(1)), params=SignatureParams(k=256), device="cpu"
    )
    with pytest.raises(IncompatibleSignaturesError):
        index.matches(other)
    with pytest.raises(IncompatibleSignaturesError):
        index.add("x", other)
    assert SignatureIndex().matches(family[0]) == []


def test_index_from_store(family, tmp_path):
    from hub.records import ModelRecord
    from lineage.pipeline import store_signature

    with Store(tmp_path / "db.sqlite") as store:
        for sig in family:
            rec = ModelRecord(id=sig.model_id, revision="r1")
            store.upsert_model(rec)
            store_signature(store, rec, sig)
        index = SignatureIndex.from_store(store, family[0].params)
        assert sorted(index.ids) == sorted(s.model_id for s in family)
        hits = index.matches(family[1], exclude=["ft-1"])
        assert hits[0].model_id in {"base", "chain"} and np.isfinite(hits[0].overlap)


# ---- CLI ----------------------------------------------------------------------------------------


def _cli(store: Store, argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, store)


def test_cli_crawl_and_scan_json(hub_env, crawl_zoo, tmp_path, monkeypatch, capsys):
    server = hub_env.start(crawl_zoo)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    with Store(tmp_path / "db.sqlite") as store:
        argv = ["crawl", "--endpoint", server.url, "--json", "--workers", "2", "--limit", "6"]
        assert _cli(store, [*argv, "--device", "cpu"]) == 0
        out = capsys.readouterr()
        summary = json.loads(out.out)
        assert summary["seen"] == 6 and summary["fingerprinted"] == 6
        assert summary["bytes_fetched"] > 0 and out.err == ""
        assert (tmp_path / "lc" / "windows").is_dir()
        assert _cli(store, ["crawl", "--endpoint", server.url, "--filter", "tiny-tag"]) == 0
        assert "models seen 0" in capsys.readouterr().out
        argv = ["scan", "--endpoint", server.url, "--json", "--since", "2024-01-05", "--limit", "3"]
        assert _cli(store, [*argv, "--device", "cpu"]) == 0
        lines = capsys.readouterr().out.splitlines()
        rows = [json.loads(line) for line in lines]
        assert [r["model"] for r in rows] == ["org/disabled", "org/bad-header", "org/pickle"]
        assert [r["status"] for r in rows] == ["not_found", "malformed", "no_safetensors"]
        assert _cli(store, ["scan", "--endpoint", server.url, "--limit", "1"]) == 0
        text = capsys.readouterr().out
        assert "declared base" in text


def test_cli_crawl_modified_since(hub_env, crawl_zoo, tmp_path, monkeypatch, capsys):
    server = hub_env.start(crawl_zoo)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    with Store(tmp_path / "db.sqlite") as store:
        argv = ["crawl", "--endpoint", server.url, "--json", "--no-fingerprint"]
        assert _cli(store, [*argv, "--sort", "modified", "--modified-since", "2024-03-12"]) == 0
        assert json.loads(capsys.readouterr().out)["seen"] == 3
        (run,) = store.runs()
        assert run.params["modified_since"] == "2024-03-12T00:00:00+00:00"


def test_cli_human_output_lists_skips(hub_env, crawl_zoo, tmp_path, monkeypatch, capsys):
    server = hub_env.start(crawl_zoo)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    with Store(tmp_path / "db.sqlite") as store:
        assert _cli(store, ["crawl", "--endpoint", server.url, "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert "models seen 14" in out.out and "fingerprinted 10" in out.out
    assert "gated 1" in out.out and "bytes fetched" in out.out
    assert "skipped org/pickle: org/pickle has only pickle checkpoints" in out.err


def test_cli_help_and_usage_errors(capsys):
    parser = build_parser()
    for command in ("crawl", "scan"):
        with pytest.raises(SystemExit) as info:
            parser.parse_args([command, "--help"])
        assert info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "~/.cache/model-lineage/windows" in text and "HF_TOKEN" in text
        assert "range request" in text
    for argv in (
        ["crawl", "--sort", "stars"],
        ["scan", "--since", "soon"],
        ["crawl", "--limit", "0"],
    ):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2


def test_lineage_main_runs_crawl(hub_env, crawl_zoo, tmp_path, capsys, hf_backoff_without_sleep):
    # `lineage crawl` through the real entry point: a missing command is a usage error here
    from lineage.cli.main import main

    server = hub_env.start(crawl_zoo)
    db = str(tmp_path / "db.sqlite")
    argv = ["--db", db, "crawl", "--endpoint", server.url, "--json", "--no-fingerprint"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["seen"] == 14
    hub_env.servers[-1].stop()
    dead = ["--db", db, "crawl", "--endpoint", "http://127.0.0.1:9", "--limit", "1"]
    assert main(dead) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_pipeline_fingerprints_hub_records_through_open_source(
    hub_env, crawl_zoo, tmp_path, monkeypatch
):
    from lineage.pipeline import fingerprint_models

    hub_env.start(crawl_zoo, use=True)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    with Store(tmp_path / "db.sqlite") as store:
        run_crawl(store, hub_env.servers[-1], tmp_path / "cache", fingerprint=False, limit=3)
        summary = fingerprint_models(store, device="cpu")
        assert len(summary.fingerprinted) == 3 and not summary.failed
        for rid in summary.fingerprinted:
            assert store.get_signature(rid).blob == local_blob(crawl_zoo, rid)
