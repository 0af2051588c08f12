"""hub.emulator.listing through the real huggingface_hub client: paging, sort, expand, filters."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import get_session
from huggingface_hub.errors import RepositoryNotFoundError

BASE = "org/base"


def test_list_models_follows_cursor_pages_in_sort_order(hub_env, zoo):
    server = hub_env.start(zoo, page_size=3)
    api = hub_env.api(server)
    models = list(api.list_models(sort="downloads"))
    public = json.loads((zoo / "manifest.json").read_text())["models"][:-1]  # secret is hidden
    expected = [m["id"] for m in sorted(public, key=lambda m: -m["downloads"])]
    assert [m.id for m in models] == expected
    assert len(models) == 11
    assert server.counters.statuses == {200: 4}  # ceil(11 / 3) pages

    server.reset_counters()
    assert len(list(api.list_models(sort="downloads", limit=5))) == 5
    assert server.counters.requests == 2  # `limit` stops the paging early


def test_list_models_expand_fields_are_parsed(hub_env, zoo):
    api = hub_env.api(hub_env.start(zoo))
    fields = ["author", "downloads", "downloadsAllTime", "likes", "createdAt", "lastModified"]
    fields += ["cardData", "safetensors", "sha", "gated", "siblings"]
    infos = {m.id: m for m in api.list_models(expand=fields)}
    child = infos["team1/child-3"]
    assert (child.author, child.downloads, child.downloads_all_time, child.likes) == (
        "team1",
        (3 * 37) % 101,
        1003,
        3,
    )
    assert child.created_at.isoformat() == "2024-02-04T10:00:00+00:00"
    assert child.card_data.base_model == [BASE]
    assert child.safetensors.parameters == {"F32": 36, "F16": 16}
    assert child.safetensors.total == 52
    assert len(child.sha) == 40
    assert child.gated is False and infos["org/gated"].gated == "manual"
    assert {s.rfilename for s in child.siblings} >= {"model.safetensors", "config.json"}
    assert child.tags is None and child.pipeline_tag is None  # not asked for
    assert infos["org/sharded"].safetensors.total == 52


def test_filter_by_base_model_tag_finds_the_children(hub_env, zoo):
    api = hub_env.api(hub_env.start(zoo, page_size=4))
    children = {m.id for m in api.list_models(filter=f"base_model:finetune:{BASE}")}
    assert children == {f"team{i % 2}/child-{i}" for i in range(1, 9)}
    assert {m.id for m in api.list_models(filter=f"base_model:{BASE}", author="team0")} == {
        "team0/child-2",
        "team0/child-4",
        "team0/child-6",
        "team0/child-8",
    }
    assert [m.id for m in api.list_models(search="shard")] == ["org/sharded"]


def test_private_repo_needs_the_token(hub_env, zoo):
    server = hub_env.start(zoo, tokens=["hf_test"])
    assert "org/secret" not in {m.id for m in hub_env.api(server).list_models()}
    with pytest.raises(RepositoryNotFoundError):
        hub_env.api(server).model_info("org/secret")
    assert hub_env.api(server, token="hf_test").model_info("org/secret").private is True


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("expand=nope", "Invalid expand fields: nope"),
        ("sort=nope", "Invalid sort field: nope"),
        ("limit=0", "limit must be a positive integer"),
        ("cursor=zzz", "Invalid cursor: zzz"),
    ],
)
def test_bad_listing_parameters_answer_400(hub_env, zoo, query, message):
    server = hub_env.start(zoo)
    response = get_session().get(f"{server.url}/api/models?{query}")
    assert response.status_code == 400
    assert response.headers["X-Error-Message"].startswith(message)


def test_next_link_keeps_the_query_and_is_absolute(hub_env, zoo):
    server = hub_env.start(zoo, page_size=2)
    response = get_session().get(f"{server.url}/api/models", params={"sort": "id", "full": "1"})
    first = [m["id"] for m in response.json()]
    assert first == sorted(first, reverse=True) and "sha" in response.json()[0]
    link = response.links["next"]["url"]
    assert link.startswith(f"{server.url}/api/models?sort=id&full=1&cursor=")
    following = [m["id"] for m in get_session().get(link).json()]
    assert following and max(following) < min(first)
