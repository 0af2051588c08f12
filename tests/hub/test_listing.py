"""hub.listing and hub.client's listing through the real huggingface_hub client against the local
Hub server (127.0.0.1 only)."""

from __future__ import annotations

import json

import pytest

from hub.client import EXPAND, HubClient
from hub.emulator.faults import FailFirst, Faults
from hub.errors import NetworkError
from hub.hub_record import record_from_info
from hub.listing import children_filter, iter_models, parse_since
from tests.hub_helpers import BAD, BASE, FINETUNES, GOOD, NoSleep, fast_retry, small

# ---- listing ----------------------------------------------------------------------------------


def test_listing_pages_and_expand_fields(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=3)
    client = HubClient(server.url, token=False)
    infos = list(iter_models(client))
    assert sorted(i.id for i in infos) == sorted([*GOOD, *BAD])
    # 14 models in pages of 3: five listing requests, all answered 200
    assert server.counters.statuses == {200: 5}
    # sort=downloads, descending: manifest order here
    assert [i.id for i in infos] == [*GOOD, *BAD]
    rec = record_from_info(next(i for i in infos if i.id == "org/ft-2"))
    assert rec.source == "hub" and rec.path is None
    assert rec.revision and len(rec.revision) == 40
    assert (rec.author, rec.downloads, rec.downloads_all_time, rec.likes) == ("org", 980, 4998, 2)
    assert rec.created_at == "2024-01-03T10:00:00.000Z"
    assert rec.last_modified == "2024-03-03T10:00:00.000Z"
    assert (rec.library, rec.pipeline_tag, rec.license) == (
        "transformers",
        "text-generation",
        "mit",
    )
    assert [(b.id, b.relation) for b in rec.declared_bases] == [(BASE, "finetune")]
    assert "base_model:finetune:org/base" in rec.tags
    assert rec.parameter_count == sum(t.numel() for t in small(0).values())
    assert rec.gated is False and "token" not in json.dumps(rec.extra).lower()
    gated = record_from_info(next(i for i in infos if i.id == "org/gated"))
    assert gated.gated is True and gated.extra["gated_mode"] == "manual"


def test_expand_asks_only_for_the_needed_fields(hub_env, crawl_zoo):
    queries = []

    def record(req, answer):
        if req.path == "/api/models":
            queries.append(req.query)
        return answer

    server = hub_env.start(crawl_zoo, tamper=record)
    list(iter_models(HubClient(server.url, token=False), limit=2))
    assert sorted(v for k, v in queries[0] if k == "expand") == sorted(EXPAND)
    assert set(EXPAND) == {
        "author", "createdAt", "lastModified", "downloads", "downloadsAllTime", "likes", "tags",
        "cardData", "library_name", "pipeline_tag", "gated", "sha", "siblings", "safetensors",
    }  # fmt: skip


def test_sort_limit_author_search(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=4)
    client = HubClient(server.url, token=False)
    created = [i.id for i in iter_models(client, sort="created")]
    assert created == list(reversed([*GOOD, *BAD]))
    likes = [i.id for i in iter_models(client, sort="likes", limit=3)]
    assert likes == list(reversed([*GOOD, *BAD]))[:3]
    assert [i.id for i in iter_models(client, authors=["other"])] == ["other/root"]
    both = [i.id for i in iter_models(client, authors=["other", "org"], search="root")]
    assert both == ["other/root"]
    modified = [i.id for i in iter_models(client, sort="modified", limit=2)]
    assert modified == list(reversed([*GOOD, *BAD]))[:2]
    with pytest.raises(ValueError, match="sort must be one of"):
        list(iter_models(client, sort="trending"))


def test_since_stops_paging_when_sorted_by_created(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=2)
    client = HubClient(server.url, token=False)
    # created 2024-01-01 .. 2024-01-14, one per model; keep the last four
    newest = [i.id for i in iter_models(client, sort="created", since="2024-01-11")]
    assert newest == list(reversed([*GOOD, *BAD]))[:4]
    # 4 kept + 1 older seen on page 3: three pages of 2, not seven
    assert server.counters.requests == 3
    server.reset_counters()
    # sorted otherwise, the cut is on the client and every page is read
    others = [i.id for i in iter_models(client, sort="downloads", since="2024-01-11T00:00:00Z")]
    assert sorted(others) == sorted(newest)
    assert server.counters.requests == 7
    with pytest.raises(ValueError, match="not a date"):
        parse_since("last tuesday")


def test_modified_since_keeps_recent_commits(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=2)
    client = HubClient(server.url, token=False)
    # last modified 2024-03-01 .. 2024-03-14, one per model; keep the last three
    recent = [i.id for i in iter_models(client, sort="modified", modified_since="2024-03-12")]
    assert recent == list(reversed([*GOOD, *BAD]))[:3]
    # 3 kept + 1 older seen on page 2: two pages of 2, not seven
    assert server.counters.requests == 2
    server.reset_counters()
    others = [i.id for i in iter_models(client, modified_since="2024-03-12T00:00:00Z")]
    assert sorted(others) == sorted(recent) and server.counters.requests == 7
    # both cuts at once: created on or after 01-13 and modified on or after 03-12
    both = list(iter_models(client, since="2024-01-13", modified_since="2024-03-12", limit=5))
    assert sorted(i.id for i in both) == sorted(recent[:2])


def test_children_of_a_base_through_the_tag_filter(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo)
    client = HubClient(server.url, token=False)
    finetunes = [i.id for i in iter_models(client, filters=[children_filter(BASE, "finetune")])]
    assert finetunes == FINETUNES
    children = {i.id for i in iter_models(client, filters=[children_filter(BASE)])}
    assert children == {*FINETUNES, "org/sharded", "org/adapter"}


def test_listing_first_page_errors_are_retried_then_reported(hub_env, crawl_zoo, monkeypatch):
    from huggingface_hub.utils import _http

    monkeypatch.setattr(_http, "time", NoSleep())  # 2.x retries the listing itself
    rule = FailFirst("503", count=1, pattern="^/api/models\\?", method="GET")
    server = hub_env.start(crawl_zoo, faults=Faults(fail_first=(rule,)))
    client = HubClient(server.url, token=False, retry=fast_retry())
    assert len(list(iter_models(client, limit=3))) == 3
    assert server.counters.faults == {"503": 1}
    hub_env.servers[-1].stop()
    dead = HubClient(server.url, token=False, retry=fast_retry(attempts=2))
    with pytest.raises(NetworkError, match="listing"):
        list(iter_models(dead))


def test_endpoint_from_hf_endpoint(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, use=True)
    client = HubClient(token=False)
    assert client.endpoint == server.url
    assert [i.id for i in iter_models(client, limit=1)] == [BASE]
