"""lineage.watch against the local Hub server through the real huggingface_hub client: uploads
published while watching, the watermark across restarts, failing models and a failing listing."""

from __future__ import annotations

import json
import os
import struct
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hub.emulator.faults import FailFirst, Faults
from lineage.crawler import crawl
from lineage.store import Store
from lineage.watch import NETWORK_POLLS, WATCH, Watermark, _advanced, last_watermark, watch
from tests.factory import noisy, write_model
from tests.hub_helpers import BASE, card, fast_retry, meta, small

INTERVAL = 0.2


def _zoo(root: Path) -> Path:
    """A base and an unrelated root, created in January 2024."""
    write_model(root / "repos" / BASE, small(0), card=card())
    write_model(root / "repos" / "other/root", small(7), card=card())
    _manifest(root, [meta(BASE, 0), meta("other/root", 1)])
    return root


def _manifest(root: Path, models: list[dict]) -> None:
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps({"models": models}))
    os.replace(tmp, root / "manifest.json")  # the server never reads half a manifest


def _publish(root: Path, repo_id: str, tensors=None, *, created: str | None = None, bases=()):
    """Upload a repo: its folder appears whole (written aside, then renamed into place). With
    `created`, a manifest entry gives its creation time; without, the server dates it by its
    files (now), as a bare folder."""
    aside = root / "incoming" / repo_id
    if tensors is not None:
        write_model(aside, tensors, card=card(list(bases)))
    target = root / "repos" / repo_id
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(aside, target)
    if created is not None:
        doc = json.loads((root / "manifest.json").read_text())["models"]
        _manifest(root, [*doc, {**meta(repo_id, len(doc)), "createdAt": created}])


def _broken(root: Path, repo_id: str) -> Path:
    """A repo folder aside (not yet published) whose safetensors header does not parse."""
    aside = root / "incoming" / repo_id
    aside.mkdir(parents=True)
    (aside / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b'{"a": 1}' + bytes(64))
    return aside


def _watch(store, server, cache, **kwargs):
    kwargs.setdefault("interval", INTERVAL)
    kwargs.setdefault("retry", fast_retry())
    return watch(
        store,
        endpoint=server.url,
        device="cpu",
        cache_dir=cache,
        token=False,
        hf_cache=False,
        **kwargs,
    )


def _runs(store):
    return [r for r in store.runs() if r.kind == WATCH]


@pytest.fixture
def hub(hub_env, tmp_path):
    """The zoo served, and a store that already holds its two models."""
    zoo = _zoo(tmp_path / "zoo")
    server = hub_env.start(zoo)
    store = Store(tmp_path / "db.sqlite")
    crawl(
        store,
        endpoint=server.url,
        device="cpu",
        cache_dir=tmp_path / "cache",
        token=False,
        hf_cache=False,
        retry=fast_retry(),
    )
    yield zoo, server, store, tmp_path / "cache"
    store.close()


def _restart(hub_env, hub, faults):
    """Serve the same zoo again, with faults (the store keeps what it holds)."""
    zoo, server, _, _ = hub
    server.stop()
    return hub_env.start(zoo, faults=faults)


def test_an_upload_published_while_watching_is_reported_at_the_next_poll(hub):
    zoo, server, store, cache = hub
    base = small(0)
    # before the watch: an unrelated upload and its fine-tune, in the same poll
    fresh = small(42)
    _publish(zoo, "new/fresh", fresh, created="2024-06-01T00:00:00.000Z")
    _publish(zoo, "new/fresh-ft", noisy(fresh, 0.01, 3), created="2024-06-02T00:00:00.000Z")
    seen, polls_at = [], []
    results = _watch(store, server, cache, since="2024-05-01", max_polls=3)
    for result in results:
        seen.append(result)
        polls_at.append(len(_runs(store)))
        if result.model_id == "new/fresh-ft":
            # published while the watch runs, between its first and second poll, as a bare
            # folder: the server dates it by its files (now), like the Hub dates an upload
            _publish(zoo, "new/ft", noisy(base, 0.01, 1), bases=[BASE])
    by_id = {r.model_id: r for r in seen}
    # oldest first, each once; the upload of the first poll matched the one before it
    assert [r.model_id for r in seen] == ["new/fresh", "new/fresh-ft", "new/ft"]
    assert [m.model_id for m in by_id["new/fresh-ft"].matches] == ["new/fresh"]
    assert by_id["new/fresh"].matches == ()  # its child was not uploaded yet when it was seen
    # the new upload: reported by the second poll, with the right source, agreeing with its card
    ft = by_id["new/ft"]
    assert polls_at == [0, 0, 1]  # the first poll's row is written once that poll ends
    assert [m.model_id for m in ft.matches] == [BASE]
    (match,) = ft.matches
    assert match.verdict == "derived" and match.p_value < 1e-10
    assert ft.declared_agrees is True and ft.status == "ok" and ft.state == "new"
    line = json.loads(json.dumps(ft.to_dict()))
    assert line["matches"][0]["model"] == BASE and line["declared_agrees"] is True
    seen_at = datetime.fromisoformat(line["seen_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - seen_at).total_seconds()) < 60
    # one row per poll that found something, one for the end: the watermark is the newest upload
    rows = _runs(store)
    assert [(r.status, r.summary.get("reported")) for r in rows] == [
        ("ok", 2),
        ("ok", 1),
        ("ok", None),
    ]
    assert rows[-1].summary["polls"] == 3
    created = store.require_model("new/ft").created_at
    mark = last_watermark(store, server.url)
    assert mark is not None and mark.ids == {"new/ft"}
    assert mark.created_at == datetime.fromisoformat(created.replace("Z", "+00:00"))


def test_a_restarted_watch_resumes_from_the_watermark(hub):
    zoo, server, store, cache = hub
    for i in range(3):
        _publish(zoo, f"new/m{i}", small(50 + i), created=f"2024-06-0{i + 1}T00:00:00.000Z")
    # stopped after the first model it reported (the generator is closed, like on Ctrl-C)
    results = _watch(store, server, cache, since="2024-05-01")
    assert next(results).model_id == "new/m0"
    results.close()
    (row,) = _runs(store)
    assert row.status == "stopped" and row.summary["reported"] == 1
    # the next watch (no --since) reports the two left, then nothing more
    assert [r.model_id for r in _watch(store, server, cache, max_polls=2)] == ["new/m1", "new/m2"]
    assert list(_watch(store, server, cache, max_polls=1)) == []
    _publish(zoo, "new/late", small(60), created="2024-07-01T00:00:00.000Z")
    assert [r.model_id for r in _watch(store, server, cache, max_polls=1)] == ["new/late"]
    # nothing read twice: each model was fingerprinted once
    for rid in ("new/m0", "new/m1", "new/m2", "new/late"):
        assert store.get_signature(rid) is not None


def test_uploads_sharing_a_timestamp_are_neither_missed_nor_repeated(hub):
    zoo, server, store, cache = hub
    when = "2024-06-01T00:00:00.000Z"
    for rid in ("new/a", "new/b", "new/c"):
        _publish(zoo, rid, small(hash(rid) % 1000 + 100), created=when)
    results = _watch(store, server, cache, since=when)
    first = next(results).model_id
    results.close()
    mark = last_watermark(store, server.url)
    assert mark is not None and mark.ids == {first}
    rest = [r.model_id for r in _watch(store, server, cache, max_polls=2)]
    assert sorted([first, *rest]) == ["new/a", "new/b", "new/c"]


def test_a_first_watch_starts_from_the_newest_upload(hub):
    zoo, server, store, cache = hub
    # no watermark and no since: what the Hub holds is not scanned, only what comes after
    assert list(_watch(store, server, cache, max_polls=2)) == []
    mark = last_watermark(store, server.url)
    assert mark is not None and mark.ids == {"other/root"}
    _publish(zoo, "new/next", noisy(small(7), 0.01, 5), created="2024-08-01T00:00:00.000Z")
    (result,) = _watch(store, server, cache, max_polls=1)
    assert result.model_id == "new/next" and [m.model_id for m in result.matches] == ["other/root"]


def test_a_failing_model_is_a_status_line_and_the_watch_goes_on(hub):
    zoo, server, store, cache = hub
    _broken(zoo, "new/broken")
    _publish(zoo, "new/broken", created="2024-06-01T00:00:00.000Z")
    pickle = zoo / "incoming" / "new/pickle"
    pickle.mkdir(parents=True)
    (pickle / "pytorch_model.bin").write_bytes(b"not a pickle" * 10)
    _publish(zoo, "new/pickle", created="2024-06-02T00:00:00.000Z")
    _publish(zoo, "new/good", noisy(small(0), 0.01, 8), created="2024-06-03T00:00:00.000Z")
    results = list(_watch(store, server, cache, since="2024-05-01", max_polls=2))
    lines = [(r.model_id, r.status) for r in results]
    assert lines == [
        ("new/broken", "malformed"),
        ("new/pickle", "no_safetensors"),
        ("new/good", "ok"),
    ]
    broken = results[0].to_dict()
    assert "new/broken" in broken["reason"] and broken["matches"] == []
    assert [m.model_id for m in results[2].matches] == [BASE]
    assert _runs(store)[0].summary["failed"] == 2


def test_a_failing_listing_is_a_warning_and_the_next_poll_goes_on(hub_env, hub):
    zoo, _, store, cache = hub
    # the listing fails at the first poll (every try), then the endpoint is back
    faults = Faults(fail_first=(FailFirst("503", count=2, pattern="/api/models"),))
    server = _restart(hub_env, hub, faults)
    _publish(zoo, "new/after", noisy(small(0), 0.01, 9), created="2024-06-01T00:00:00.000Z")
    warnings: list[str] = []
    results = list(
        _watch(
            store,
            server,
            cache,
            since="2024-05-01",
            max_polls=2,
            warn=warnings.append,
            retry=fast_retry(attempts=2),
        )
    )
    assert [r.model_id for r in results] == ["new/after"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("poll 1:") and "503" in warnings[0]


def test_a_dead_endpoint_never_stops_the_watch(hub, tmp_path):
    _, server, store, cache = hub
    server.stop()
    warnings: list[str] = []
    results = list(_watch(store, server, cache, max_polls=2, interval=0.05, warn=warnings.append))
    assert results == [] and len(warnings) == 2
    assert all("did not answer" in w or "could not" in w for w in warnings)
    assert _runs(store)[-1].status == "ok"


def test_a_model_failing_with_network_is_tried_again_then_reported(hub_env, hub):
    zoo, _, store, cache = hub
    faults = Faults(rate_5xx=1.0, pattern="/new/flaky/")
    server = _restart(hub_env, hub, faults)
    _publish(zoo, "new/flaky", small(70), created="2024-06-01T00:00:00.000Z")
    _publish(zoo, "new/fine", small(71), created="2024-06-02T00:00:00.000Z")
    warnings: list[str] = []
    results = _watch(
        store,
        server,
        cache,
        since="2024-05-01",
        max_polls=NETWORK_POLLS + 1,
        interval=0.05,
        warn=warnings.append,
        retry=fast_retry(attempts=1),
    )
    got = [(r.model_id, r.status) for r in results]
    # the later upload is not held back, and is reported once; the flaky one after its last try
    assert got == [("new/fine", "ok"), ("new/flaky", "network")]
    assert len(warnings) == NETWORK_POLLS - 1
    assert all("new/flaky is tried at the next poll" in w for w in warnings)


def test_a_stop_event_ends_the_watch_after_the_model_in_hand(hub):
    zoo, server, store, cache = hub
    for i in range(3):
        _publish(zoo, f"new/s{i}", small(80 + i), created=f"2024-06-0{i + 1}T00:00:00.000Z")
    stop = threading.Event()
    seen = []
    for result in _watch(store, server, cache, since="2024-05-01", stop=stop):
        seen.append(result.model_id)
        stop.set()  # as the SIGTERM handler of the CLI does
    assert seen == ["new/s0"]
    rows = _runs(store)
    assert [r.status for r in rows] == ["stopped"]
    assert [r.model_id for r in _watch(store, server, cache, max_polls=1)] == ["new/s1", "new/s2"]


def test_watermark_moves_to_the_oldest_model_not_done():
    t = [datetime(2024, 6, d, tzinfo=timezone.utc) for d in (1, 2, 3)]

    class Info:
        def __init__(self, i, when):
            self.id, self.created_at = i, when

    polled = [Info("a", t[0]), Info("b", t[1]), Info("c", t[2])]
    created = {i.id: i.created_at for i in polled}
    start = Watermark(t[0], frozenset({"old"}))
    assert _advanced(start, polled, {"a", "b", "c"}, created) == Watermark(t[2], frozenset({"c"}))
    assert _advanced(start, polled, {"a", "c"}, created) == Watermark(t[1], frozenset({"c"}))
    assert _advanced(start, polled, set(), created) == Watermark(t[0], frozenset({"old"}))
    assert Watermark.from_dict(start.to_dict()) == start
    assert Watermark.from_dict({"owner": 1}) is None and Watermark.from_dict(None) is None


def test_bad_arguments_are_refused(hub):
    _, server, store, cache = hub
    with pytest.raises(ValueError, match="interval"):
        next(_watch(store, server, cache, interval=-1))
    with pytest.raises(ValueError, match="max_polls"):
        next(_watch(store, server, cache, max_polls=0))
