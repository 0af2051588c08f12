"""A hostile Hub: the emulator's answers tampered with (`serve(tamper=...)`), read by the real
huggingface_hub client and our own HTTP reads. Every case ends in a one-line error or one
model's recorded failure, with the rest of the crawl complete; nothing is written or read outside
the cache folders; the token never leaves the endpoint's origin."""

from __future__ import annotations

import json
import shutil
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from hub import http
from hub.client import HubClient
from hub.emulator.messages import Answer, FileSpan
from hub.errors import NetworkError
from hub.listing import iter_models
from lineage.crawler import crawl
from lineage.store import Store
from tests.hub_helpers import BAD, GOOD, TOKEN, fast_retry


def _crawl(store, server, tmp_path, **kwargs):
    kwargs.setdefault("cache_dir", tmp_path / "work" / "windows")
    kwargs.setdefault("hf_cache", False)
    kwargs.setdefault("workers", 2)
    return crawl(
        store, endpoint=server.url, token=False, retry=fast_retry(2), device="cpu", **kwargs
    )


def _is_listing(req) -> bool:
    return req.path == "/api/models"


def _json(change, when):
    """A tamper that rewrites the JSON body of the answers `when(req)` selects."""

    def tamper(req, answer: Answer) -> Answer:
        if not when(req) or answer.status != 200:
            return answer
        doc = change(json.loads(answer.body))
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return replace(answer, body=body)

    return tamper


def _of_repo(repo_id: str, part: str):
    return lambda req: part in req.path and repo_id in req.path


def _assert_one_line(text: str) -> None:
    assert text and "\n" not in text and len(text) <= 500 and "Traceback" not in text


# ---- the listing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"models": []},  # not a list
        b'[{"id": "org/base",',  # not JSON
        b"[" * 100_000 + b"]" * 100_000,  # nested past any bound
        b"[1e999]",  # a number JSON cannot hold
    ],
    ids=["not-a-list", "invalid", "deep", "infinite"],
)
def test_a_broken_listing_is_one_line_error(hub_env, crawl_zoo, tmp_path, body):
    server = hub_env.start(crawl_zoo, tamper=_json(lambda doc: body, _is_listing))
    with Store(tmp_path / "db.sqlite") as store:
        with pytest.raises(NetworkError) as err:
            _crawl(store, server, tmp_path)
        _assert_one_line(str(err.value))
        assert "listing" in str(err.value)
        assert store.runs()[-1].status == "failed"


def test_garbage_entries_fail_alone_and_the_rest_is_crawled(hub_env, crawl_zoo, tmp_path):
    def garbage(doc):
        for entry in doc:
            if entry["id"] == "org/ft-1":
                entry["createdAt"] = "yesterday, around noon"
            if entry["id"] == "org/ft-2":
                entry["downloads"] = "many"
                entry["likes"] = 10**30
            if entry["id"] == "org/ft-3":
                entry["siblings"] = [42, {"nope": 1}, "x"]
            if entry["id"] == "org/ft-4":
                entry["tags"] = {"not": "a list"}
        return [{"no": "id"}, {"id": "../../escape"}, 7, *doc]

    server = hub_env.start(crawl_zoo, tamper=_json(garbage, _is_listing))
    with Store(tmp_path / "db.sqlite") as store:
        summary = _crawl(store, server, tmp_path)
        # the entries without a usable id are skipped; each other one was read by id
        assert summary.seen == len(GOOD) + len(BAD)
        assert summary.fingerprinted == len(GOOD)
        assert store.require_model("org/ft-2").downloads == 0
        assert store.require_model("org/ft-2").likes == 0


def test_a_huge_listing_page_is_refused_unread(hub_env, crawl_zoo, tmp_path):
    from hub.client import LISTING_PAGE_MAX

    page = tmp_path / "page.json"
    entry = b'{"id": "org/x"},'
    with open(page, "wb") as f:  # a listing page of over 2 million entries
        f.write(b"[" + entry * (LISTING_PAGE_MAX // len(entry) + 1) + b'{"id": "org/y"}]')
    size = page.stat().st_size

    def huge(req, answer):
        return replace(answer, file=FileSpan(page, 0, size)) if _is_listing(req) else answer

    server = hub_env.start(crawl_zoo, tamper=huge)
    tracemalloc.start()
    try:
        with pytest.raises(NetworkError, match="limit") as err:
            list(iter_models(HubClient(server.url, token=False, retry=fast_retry(1)), limit=20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _assert_one_line(str(err.value))
    # the page was never read into memory (the server's own work is counted too: ~9 MB)
    assert peak < LISTING_PAGE_MAX // 2


def test_a_dripping_server_cannot_hold_a_request_past_its_deadline(hub_env, crawl_zoo):
    def drip(req, answer):
        return replace(answer, drip_s=0.05) if _is_listing(req) else answer

    server = hub_env.start(crawl_zoo, tamper=drip)
    client = HubClient(server.url, token=False, retry=fast_retry(1), deadline=1.0)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="too slow") as err:
        list(iter_models(client))
    assert time.monotonic() - started < 5
    _assert_one_line(str(err.value))


@pytest.mark.parametrize(
    "garbage",
    [b"not json", b"[" * 100_000, b'[{"path": 5, "size": "big"}]', b'{"a": 1}'],
    ids=["invalid", "deep", "bad-entry", "not-a-list"],
)
def test_garbage_info_answers_fail_that_model_alone(hub_env, crawl_zoo, tmp_path, garbage):
    def tamper(req, answer):
        if answer.status != 200:
            return answer
        if _is_listing(req):  # without sha and siblings, org/ft-4 is read through model info
            doc = json.loads(answer.body)
            for entry in doc:
                if entry["id"] == "org/ft-4":
                    entry.pop("sha", None)
                    entry.pop("siblings", None)
            return replace(answer, body=json.dumps(doc).encode())
        if req.path.startswith("/api/models/org/ft-4") or (
            "paths-info" in req.path and "org/ft-3" in req.path
        ):
            return replace(answer, body=garbage)
        return answer

    server = hub_env.start(crawl_zoo, tamper=tamper)
    with Store(tmp_path / "db.sqlite") as store:
        summary = _crawl(store, server, tmp_path)
        for rid in ("org/ft-3", "org/ft-4"):
            rec = store.require_model(rid)
            assert rec.status == "network" and store.get_signature(rid) is None
            assert "not what the API returns" in rec.reason
            _assert_one_line(rec.reason)
        assert summary.fingerprinted == len(GOOD) - 2


# ---- weights: bodies, redirects, encodings ------------------------------------------------------


def _resolve_of(repo_id: str):
    return lambda req: "/resolve/" in req.path and req.path.startswith(f"/{repo_id}/")


def test_a_body_far_longer_than_its_range_is_never_read_whole(hub_env, crawl_zoo, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(500 * 2**20)  # sparse: 500 MB on the wire, nothing on disk

    def long_body(req, answer):
        if _resolve_of("org/ft-1")(req) and answer.status in (200, 206):
            return replace(answer, status=206, file=FileSpan(big, 0, 500 * 2**20))
        return answer

    server = hub_env.start(crawl_zoo, tamper=long_body)
    with Store(tmp_path / "db.sqlite") as store:
        tracemalloc.start()
        try:
            summary = _crawl(store, server, tmp_path, workers=1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 200 * 2**20
        ft1 = store.require_model("org/ft-1")
        assert ft1.status == "network" and store.get_signature("org/ft-1") is None
        _assert_one_line(ft1.reason)
        assert summary.fingerprinted == len(GOOD) - 1


def test_a_server_that_ignores_range_costs_only_the_bytes_up_to_the_window(
    hub_env, crawl_zoo, tmp_path, monkeypatch
):
    def no_range(req, answer):
        if "/resolve/" in req.path and answer.status == 206 and answer.file is not None:
            whole = replace(answer.file, start=0, length=answer.file.path.stat().st_size)
            headers = {k: v for k, v in answer.headers.items() if k != "Content-Range"}
            return replace(answer, status=200, headers=headers, file=whole)
        return answer

    plain = hub_env.start(crawl_zoo)
    rangeless = hub_env.start(crawl_zoo, tamper=no_range)
    with Store(tmp_path / "a.sqlite") as a, Store(tmp_path / "b.sqlite") as b:
        _crawl(a, plain, tmp_path, cache_dir=False)
        _crawl(b, rangeless, tmp_path, cache_dir=False)
        for rid in GOOD:  # the same signatures: only the bytes asked for were kept
            assert a.get_signature(rid).blob == b.get_signature(rid).blob, rid
    # a window far into a file would download the file: refused, the model fails alone
    # (after 8 such models in a row the crawl stops: the endpoint is unusable)
    monkeypatch.setattr(http, "RANGELESS_MAX", 1024)
    with Store(tmp_path / "c.sqlite") as c:
        with pytest.raises(NetworkError, match="ignores Range") as err:
            _crawl(c, rangeless, tmp_path, cache_dir=False)
        _assert_one_line(str(err.value))
        failed = [r for r in c.models() if r.status == "network"]
        assert len(failed) == 8 and all("ignores Range" in r.reason for r in failed)
        assert not c.signatures()


@pytest.mark.parametrize(
    "answer",
    [
        lambda req, a: Answer(302, {"Location": req.path}),  # a redirect loop
        lambda req, a: Answer(302, {}),  # a redirect to nowhere
        lambda req, a: replace(a, headers={**a.headers, "Content-Encoding": "gzip"}),  # not gzip
    ],
    ids=["redirect-loop", "no-location", "bad-gzip"],
)
def test_broken_weight_answers_fail_that_model_alone(hub_env, crawl_zoo, tmp_path, answer):
    def tamper(req, a):
        return answer(req, a) if _resolve_of("org/ft-1")(req) else a

    server = hub_env.start(crawl_zoo, tamper=tamper)
    with Store(tmp_path / "db.sqlite") as store:
        summary = _crawl(store, server, tmp_path)
        ft1 = store.require_model("org/ft-1")
        assert ft1.status == "network" and store.get_signature("org/ft-1") is None
        _assert_one_line(ft1.reason)
        assert summary.fingerprinted == len(GOOD) - 1


# ---- paths from the server ----------------------------------------------------------------------


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_traversal_in_every_server_field_never_reaches_the_disk(hub_env, crawl_zoo, tmp_path):
    zoo = shutil.copytree(crawl_zoo, tmp_path / "zoo")
    # a model file where a traversal through the HF cache would land: never read
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(zoo / "repos/other/root/model.safetensors", outside / "model.safetensors")
    hf_cache = tmp_path / "a" / "hf"
    hf_cache.mkdir(parents=True)
    escape_sha = "../../../../outside"

    def tamper(req, answer):
        if answer.status != 200 or answer.file is not None:
            return answer
        try:
            doc = json.loads(answer.body)
        except ValueError:
            return answer
        for entry in doc if isinstance(doc, list) else [doc]:
            if not isinstance(entry, dict):
                continue
            path = entry.get("path", "")
            if "org/base" in req.path and path.endswith(".safetensors") and "lfs" in entry:
                entry["lfs"]["oid"] = "..escape-lfs"  # the window cache key
            if "org/sharded" in req.path and path.endswith(".index.json"):
                entry["oid"] = "../../../escape-blob"  # the git blob id of a non-LFS file
            if entry.get("id") == "org/ft-1":
                entry["sha"] = escape_sha  # the commit sha, joined into the HF cache path
            if entry.get("id") == "org/ft-2" and entry.get("siblings"):
                entry["siblings"] = [
                    {"rfilename": "../../outside/model.safetensors"},
                    {"rfilename": "/etc/model.safetensors"},
                    {"rfilename": "README.md"},
                ]
        return replace(answer, body=json.dumps(doc).encode())

    server = hub_env.start(zoo, tamper=tamper)
    before = _files_under(tmp_path)
    with Store(tmp_path / "work" / "db.sqlite") as store:
        summary = _crawl(store, server, tmp_path, hf_cache=hf_cache)
        statuses = {m.model_id: m.status for m in summary.models}
        assert statuses["org/base"] == "malformed"  # the LFS oid is no content hash
        assert statuses["org/sharded"] == "malformed"  # nor is the index's blob id
        assert statuses["org/ft-1"] == "malformed"  # the sha is no commit
        assert statuses["org/ft-2"] == "no_safetensors"  # no file name inside the repo
        for rid in ("org/base", "org/sharded", "org/ft-1", "org/ft-2"):
            assert store.get_signature(rid) is None
            _assert_one_line(store.require_model(rid).reason)
        assert not any(m.bytes_local for m in summary.models)  # nothing read from outside
        others = set(GOOD) - {"org/base", "org/sharded", "org/ft-1", "org/ft-2"}
        assert {m.model_id for m in summary.models if m.fingerprinted} == others
    written = _files_under(tmp_path) - before
    allowed = (tmp_path / "work", hub_env.home)
    stray = [p for p in written if not any(p.is_relative_to(a) for a in allowed)]
    assert stray == []
    assert not (tmp_path / "work" / "..escape-lfs").exists()


# ---- the token ----------------------------------------------------------------------------------


def _bearers(seen: list):
    def record(req, answer):
        seen.append((req.path, req.bearer))
        return answer

    return record


def test_the_token_never_follows_a_link_or_redirect_to_another_origin(hub_env, crawl_zoo):
    foreign: list = []
    other = hub_env.start(crawl_zoo, tamper=_bearers(foreign))
    home: list = []

    def hostile(req, answer):
        home.append((req.path, req.bearer))
        if _is_listing(req):
            link = f'<{other.url}/api/models?limit=3>; rel="next"'
            return replace(answer, headers={**answer.headers, "Link": link})
        if "/resolve/" in req.path:
            return Answer(302, {"Location": f"{other.url}{req.path}"})
        return answer

    server = hub_env.start(crawl_zoo, tamper=hostile, tokens=[TOKEN], page_size=4)
    client = HubClient(server.url, token=TOKEN, retry=fast_retry(1))
    assert len(list(iter_models(client))) == len(GOOD) + len(BAD)
    sha = client.model_info("org/base").sha
    data, _ = client.get_range("org/base", sha, "model.safetensors", 0, 8)
    assert len(data) == 8  # the redirect was followed too
    assert home and all(bearer == TOKEN for _, bearer in home)
    assert foreign and all(bearer is None for _, bearer in foreign)
    assert any(p == "/api/models" for p, _ in foreign)
    assert any("/resolve/" in p for p, _ in foreign)


def test_a_model_slow_on_every_request_is_cut_at_its_deadline(hub_env, crawl_zoo):
    from fingerprint.signature import compute_signature
    from hub.emulator.faults import Faults
    from hub.hubsource import open_hub_model

    server = hub_env.start(crawl_zoo, faults=Faults(latency_s=0.3, pattern="/resolve/"))
    client = HubClient(server.url, token=False, retry=fast_retry(1))
    started = time.monotonic()
    with pytest.raises(NetworkError, match="took over 1 s") as err:
        model = open_hub_model(
            "org/base", client=client, hf_cache=False, whole_file=0, deadline_s=1.0
        )
        compute_signature(model, device="cpu")  # each window is one more slow request
    assert time.monotonic() - started < 5
    _assert_one_line(str(err.value))
