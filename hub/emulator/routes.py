"""Routing of the emulated Hub: which endpoint answers a request's method and path.

    GET  /api/models                              `hub.emulator.listing`
    GET  /api/models/{id}[/revision/{rev}]        `hub.emulator.info`
    GET  /api/models/{id}/tree/{rev}[/{path}]
    POST /api/models/{id}/paths-info/{rev}
    HEAD /{id}/resolve/{rev}/{path}               `hub.emulator.downloads`
    GET  /{id}/resolve/{rev}/{path}

Repo ids are `org/name` or `name`. A known path with another method answers 405 with `Allow`;
an unknown path 404.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from hub.emulator.downloads import resolve
from hub.emulator.info import model_info, paths_info, tree
from hub.emulator.listing import list_models
from hub.emulator.messages import Answer, ApiError, Request

__all__ = ["route"]


@dataclass(frozen=True, slots=True)
class _Action:
    """What follows `/api/models/{id}`: the methods allowed, how many path segments may follow
    the action's name, and the endpoint, given the repo id and those segments (unquoted)."""

    methods: tuple[str, ...]
    args: range
    answer: Callable[[Request, str, list[str]], Answer]


_ACTIONS: dict[str | None, _Action] = {
    None: _Action(("GET",), range(1), lambda req, repo, _: model_info(req, repo, "main")),
    "revision": _Action(("GET",), range(1, 2), lambda req, repo, a: model_info(req, repo, a[0])),
    "tree": _Action(
        ("GET",), range(1, sys.maxsize), lambda req, repo, a: tree(req, repo, a[0], "/".join(a[1:]))
    ),
    "paths-info": _Action(("POST",), range(1, 2), lambda req, repo, a: paths_info(req, repo, a[0])),
}


def route(req: Request) -> Answer:
    """The answer of the endpoint the request's method and path name.

    Raises:
        ApiError: 404 for an unknown path, 405 for a method the path does not allow, or the
            endpoint's own error.
    """
    segs = req.path.split("/")[1:]
    if segs[:2] == ["api", "models"]:
        rest = segs[2:]
        if rest in ([], [""]):
            _allow(req, "GET")
            return list_models(req)
        repo_id, name, args = _split_api_path(rest)
        action = _ACTIONS[name]
        if len(args) in action.args:
            _allow(req, *action.methods)
            return action.answer(req, repo_id, args)
    elif "resolve" in segs[1:3]:
        at = segs.index("resolve", 1)
        parts = [unquote(s) for s in segs]
        if len(parts) > at + 2:
            _allow(req, "GET", "HEAD")
            return resolve(req, "/".join(parts[:at]), parts[at + 1], "/".join(parts[at + 2 :]))
    raise ApiError(404, None, f"Not found: {req.method} {req.path}")


def _allow(req: Request, *methods: str) -> None:
    if req.method not in methods:
        raise ApiError(405, None, f"Method {req.method} not allowed", Allow=", ".join(methods))


def _split_api_path(rest: list[str]) -> tuple[str, str | None, list[str]]:
    """Split `/api/models/<rest>` into (repo id, action or None, unquoted action arguments)."""
    # The action is the segment after `name` or `org/name`, whichever comes first.
    cut = next((i for i in (2, 1) if len(rest) > i and rest[i] in _ACTIONS), None)
    if cut is None:
        return "/".join(unquote(s) for s in rest), None, []
    return (
        "/".join(unquote(s) for s in rest[:cut]),
        rest[cut],
        [unquote(s) for s in rest[cut + 1 :]],
    )
