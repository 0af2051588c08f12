"""JSON from files and servers, parsed with bounds: size, nesting depth, finite numbers, unique keys.

Every JSON document a stranger wrote (a safetensors header, `config.json`, a shard index,
`adapter_config.json`) goes through `loads`, so a deeply nested, huge or odd document is one
`JsonBoundError` (a ValueError) instead of a RecursionError, a hang or a silent reading that
other tools do not share (duplicate keys: the last one wins in Python, an error in Rust).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "JsonBoundError", "check_depth", "loads"]

# Deeper than any header, config or index (a safetensors header is 3 levels deep).
MAX_DEPTH = 64
# An escaped UTF-16 surrogate: only then can a parsed string hold one that UTF-8 cannot encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonBoundError(ValueError):
    """A document that is not JSON, or is over a bound; `str(err)` says which, in a few words."""


def _no_constant(name: str) -> Any:
    raise JsonBoundError(f"has the non-finite number {name}")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise JsonBoundError(f"has the key {_short(dup)} twice")
    return out


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBoundError(f"has a number out of range ({_short(text)})")
    return value


def _short(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 5] + "...'"


def depth(doc: Any) -> int:
    """Nesting depth of a parsed document (a scalar is 0), without recursion: one level of
    containers at a time (a parsed document holds only dicts and lists)."""
    level = 0
    containers = [doc] if type(doc) in (dict, list) else []
    while containers:
        level += 1
        inner = []
        for item in containers:
            children = item.values() if type(item) is dict else item
            inner += [c for c in children if type(c) in (dict, list)]
        containers = inner
    return level


def check_depth(doc: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonBoundError when a parsed document is nested deeper than `max_depth` levels."""
    if depth(doc) > max_depth:
        raise JsonBoundError(f"is nested deeper than {max_depth} levels")


def _strings(doc: Any) -> Any:
    """Every key and string value of a parsed document, without recursion."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _encodable(doc: Any) -> bool:
    try:
        for s in _strings(doc):
            s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loads(
    data: bytes | str, *, max_bytes: int | None = None, max_depth: int | None = MAX_DEPTH
) -> Any:
    """Parse strict JSON: UTF-8, at most `max_bytes`, `max_depth` levels, finite numbers,
    no key twice in one object.

    `max_depth=None` leaves the depth walk to the caller (`check_depth`): a safetensors header
    whose entries are all of the fixed shape is three levels deep without one. Python's own
    recursion limit still ends in a JsonBoundError.

    Raises:
        JsonBoundError: not UTF-8 JSON, or over one of the bounds.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise JsonBoundError(f"is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(
            text, object_pairs_hook=_unique, parse_constant=_no_constant, parse_float=_float
        )
    except JsonBoundError:
        raise
    except RecursionError:
        bound = MAX_DEPTH if max_depth is None else max_depth  # past it: over either bound
        raise JsonBoundError(f"is nested deeper than {bound} levels") from None
    except (UnicodeDecodeError, ValueError) as err:  # int digits over the limit are ValueError
        raise JsonBoundError("is not UTF-8 JSON") from err
    if max_depth is not None:
        check_depth(doc, max_depth)
    if _SURROGATE_ESCAPE.search(text) and not _encodable(doc):
        raise JsonBoundError("has a string with a lone UTF-16 surrogate, which UTF-8 cannot hold")
    return doc
