"""Models on a Hugging Face Hub (or any Hub-compatible endpoint), read through huggingface_hub.

What is read, and what it costs:

- **Listing**: `HfApi.list_models` with `expand=` only the fields a `ModelRecord` needs
  (`EXPAND`), paged by the API's cursor links. One request per page of models.
- **Opening a model** (`open_hub_model`): one `paths-info` call for its weight files (sizes and
  content hashes), then the first `HEADER_PREFIX` bytes of each safetensors file by an HTTP
  Range request (a second request only when a header is longer; a file of at most
  `WHOLE_FILE` bytes is read whole), validated by `hub.safetensors_header`. A sharded
  checkpoint also costs its small index JSON.
- **Windows** (`HubModel.read_range`): one Range request per slot window, at the pinned commit.

Every range goes through a `WindowCache` (content-addressed, on disk) and, when the repo's
snapshot at the same commit is in the local HF cache, is read from disk instead: a model
fingerprinted once costs no weight bytes again. Bodies are checked to be exactly the range asked
for; a short body is retried and never cached.

Which weights a repo holds follows `hub.local` exactly (single file, sharded index, adapter, other
safetensors; a subfolder per pipeline component when the root has none), and tensor names are
qualified the same way, so a Hub signature is bit-identical to the signature of the same files
in a local folder. Pickle checkpoints are never downloaded.

Errors are `hub.errors` classes, each with its status code: gated (401/403, `GatedRepo`) ->
`gated`; missing repo -> `not_found`; only `.bin`/`.pt` -> `no_safetensors`; a header that does
not parse -> `malformed`; retries exhausted -> `network`. `endpoint=` (else `HF_ENDPOINT`) and
`HF_TOKEN` are honoured; the token is only ever put in request headers by huggingface_hub's
`build_hf_headers`: it is never logged, stored, printed or put in a message.
"""

from __future__ import annotations

import json
import os
import posixpath
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, hf_hub_url
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import _pagination, build_hf_headers, hf_raise_for_status, http_backoff

from hub.card import declared_bases
from hub.errors import (
    GatedModelError,
    HubError,
    MalformedFileError,
    ModelNotFoundError,
    NetworkError,
    NoSafetensorsError,
)
from hub.local import (
    _INDEX_NAMES,
    _SINGLE_NAMES,
    ADAPTER_NAME,
    PICKLE_SUFFIXES,
    TensorIndex,
    _index_tensors,
    _Located,
)
from hub.records import ModelRecord
from hub.retry import RetryPolicy, ShortBodyError, transport_errors
from hub.safetensors_header import SafetensorsHeader, header_length, parse_header
from hub.window_cache import WindowCache

__all__ = [
    "EXPAND",
    "HEADER_PREFIX",
    "WHOLE_FILE",
    "SORTS",
    "HubClient",
    "HubModel",
    "ReadStats",
    "children_filter",
    "iter_models",
    "open_hub_model",
    "parse_since",
    "record_from_info",
]

# The only fields a listing asks for: what ModelRecord holds, plus siblings/sha to open weights.
EXPAND = (
    "author",
    "createdAt",
    "lastModified",
    "downloads",
    "downloadsAllTime",
    "likes",
    "tags",
    "cardData",
    "library_name",
    "pipeline_tag",
    "gated",
    "sha",
    "siblings",
    "safetensors",
)
_TRANSPORT = transport_errors()
_LIBRARY_RETRIES_FIRST_PAGE = hasattr(_pagination, "_paginate_pages")
# CLI sort names -> huggingface_hub's `sort=` values (which it maps to the API's keys).
SORTS = {
    "downloads": "downloads",
    "created": "created_at",
    "likes": "likes",
    "modified": "last_modified",
}
# First bytes read of every safetensors file: the 8-byte length and, nearly always, the whole
# JSON header (a 70B shard's header is a few tens of KB). Longer headers cost one more request.
HEADER_PREFIX = 64 * 1024
# Files up to this size are read whole by that first request: one request instead of one per
# window, and no byte fetched twice. The bytes are held in memory while the model is open.
WHOLE_FILE = 1024 * 1024


def children_filter(base_id: str, relation: str | None = None) -> str:
    """The listing filter that finds the models declaring `base_id` as their base.

    `base_model:<id>` matches every child; `base_model:<relation>:<id>` (relation `finetune`,
    `adapter`, `quantized` or `merge`) only those of that kind.
    """
    return f"base_model:{relation}:{base_id}" if relation else f"base_model:{base_id}"


def parse_since(value: str | date | datetime | None) -> datetime | None:
    """An aware UTC datetime from `2024-05-01`, `2024-05-01T12:00`, `...Z`, a date or datetime.

    Raises:
        ValueError: the text is not an ISO 8601 date or date-time.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date; give one like 2024-05-01 or 2024-05-01T12:00:00Z"
            ) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _iso(when: datetime | None) -> str | None:
    """A datetime as the Hub writes it: `2024-01-31T12:00:00.000Z`."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _card_dict(info: Any) -> dict:
    card = getattr(info, "card_data", None)
    if card is None:
        return {}
    if isinstance(card, dict):
        return card
    try:
        data = card.to_dict()
    except Exception:  # a card the library cannot serialise is "no card", never a crash
        return {}
    return data if isinstance(data, dict) else {}


def _sibling_names(info: Any) -> list[str] | None:
    siblings = getattr(info, "siblings", None)
    if siblings is None:
        return None
    return [s.rfilename for s in siblings if getattr(s, "rfilename", None)]


def record_from_info(info: Any) -> ModelRecord:
    """A `ModelRecord` (source "hub", no path) from a huggingface_hub `ModelInfo`.

    Declared bases come from the card and the `base_model:` tags; the license from the card,
    else a `license:` tag; the parameter count from the `safetensors` summary. `extra` holds only
    endpoint-free facts about the repo (never a URL, never a token).
    """
    card = _card_dict(info)
    tags = tuple(t for t in (getattr(info, "tags", None) or ()) if isinstance(t, str))
    license_ = _text(card.get("license"))
    if license_ is None:
        license_ = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
    gated = getattr(info, "gated", None)
    st = getattr(info, "safetensors", None)
    names = _sibling_names(info)
    extra: dict[str, Any] = {}
    if isinstance(gated, str):
        extra["gated_mode"] = gated
    if names is not None:
        extra["files"] = len(names)
        extra["adapter"] = ADAPTER_NAME in names
    repo_id = info.id
    author = getattr(info, "author", None) or (repo_id.split("/", 1)[0] if "/" in repo_id else None)
    downloads_all = getattr(info, "downloads_all_time", None)
    return ModelRecord(
        id=repo_id,
        revision=getattr(info, "sha", None),
        author=author,
        downloads=int(getattr(info, "downloads", None) or 0),
        downloads_all_time=int(downloads_all) if downloads_all is not None else None,
        likes=int(getattr(info, "likes", None) or 0),
        created_at=_iso(getattr(info, "created_at", None)),
        last_modified=_iso(getattr(info, "last_modified", None)),
        library=_text(getattr(info, "library_name", None)),
        pipeline_tag=_text(getattr(info, "pipeline_tag", None)),
        license=license_,
        gated=bool(gated),
        tags=tags,
        declared_bases=declared_bases(card, tags),
        parameter_count=int(st.total) if st is not None and st.total is not None else None,
        source="hub",
        path=None,
        extra=extra,
    )


# ---- errors ----------------------------------------------------------------------------------


def _mapped(err: HfHubHTTPError, repo_id: str, what: str) -> HubError:
    """The hub.errors error for an HTTP error of huggingface_hub (order matters: gated is a
    kind of not-found there)."""
    status = err.response.status_code if err.response is not None else None
    if isinstance(err, DisabledRepoError):
        return ModelNotFoundError(
            f"{repo_id} has been disabled on the Hub and cannot be read by anyone",
            model_id=repo_id,
        )
    if isinstance(err, GatedRepoError) or status in (401, 403):
        return GatedModelError(
            f"{repo_id} is gated or private (HTTP {status}); request access on its Hub page and "
            "set HF_TOKEN to a token that has it",
            model_id=repo_id,
        )
    if isinstance(err, RevisionNotFoundError):
        return ModelNotFoundError(
            f"the revision of {repo_id} being read is gone (the repo changed meanwhile); run "
            "`lineage crawl` again to read its new revision",
            model_id=repo_id,
        )
    if isinstance(err, EntryNotFoundError):
        return MalformedFileError(
            f"{what} of {repo_id} is listed but cannot be downloaded (HTTP {status}); the repo "
            "is incomplete, check it on the Hub",
            model_id=repo_id,
            path=what,
        )
    if isinstance(err, RepositoryNotFoundError) or status == 404:
        return ModelNotFoundError(
            f"{repo_id} was not found on the Hub (deleted, renamed or private); check the id",
            model_id=repo_id,
        )
    return NetworkError(
        f"reading {what} of {repo_id} failed with HTTP {status}; try again later",
        model_id=repo_id,
    )


# ---- client ----------------------------------------------------------------------------------


class HubClient:
    """huggingface_hub calls against one endpoint, with retries and hub.errors errors.

    Args:
        endpoint: Hub URL; default `HF_ENDPOINT`, else https://huggingface.co.
        token: access token; default what huggingface_hub finds (`HF_TOKEN`, a stored login);
            False for anonymous. Kept private: `repr` never shows it.
        retry: retries of the calls huggingface_hub does not retry (default `RetryPolicy()`).
        timeout: seconds per request (default huggingface_hub's download timeout).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | bool | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ):
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.__token = token
        self.retry = retry or RetryPolicy()
        self.timeout = timeout if timeout is not None else float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
        self.api = HfApi(endpoint=self.endpoint, token=token)

    def __repr__(self) -> str:
        return f"HubClient(endpoint={self.endpoint!r})"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Request headers (authorization included when a token is known)."""
        return build_hf_headers(token=self.__token, headers=extra)

    def list_models(
        self,
        *,
        author: str | None = None,
        search: str | None = None,
        filters: Sequence[str] = (),
        sort: str = "downloads",
        limit: int | None = None,
    ) -> Iterator[Any]:
        """`ModelInfo`s, sorted descending by `sort` (see `SORTS`), lazily page by page.

        The first page is retried here where huggingface_hub does not (1.x); later pages are
        retried by huggingface_hub itself. Stop iterating and no further page is requested.

        Raises:
            ValueError: an unknown sort.
            NetworkError: the listing could not be read.
        """
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        what = "the model listing"

        def first() -> tuple[Any, Iterator[Any]]:
            it = iter(
                self.api.list_models(
                    author=author or None,
                    search=search or None,
                    filter=list(filters) or None,
                    sort=SORTS[sort],  # type: ignore[arg-type]
                    limit=limit,
                    expand=list(EXPAND),  # type: ignore[arg-type]
                )
            )
            return next(it, None), it

        # huggingface_hub 2.x retries the first page itself (with backoff); wrapping that again
        # would multiply the waits on a dead endpoint. 1.x sends it once: retry it here.
        policy = self.retry if not _LIBRARY_RETRIES_FIRST_PAGE else replace(self.retry, attempts=1)
        try:
            head, rest = policy.call(first, what=what)
            if head is None:
                return
            yield head
            yield from rest
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            raise NetworkError(
                f"the model listing of {self.endpoint} failed with HTTP {status}; check the "
                "endpoint, the filters and your connection"
            ) from err
        except _TRANSPORT as err:
            raise NetworkError(
                f"the model listing of {self.endpoint} could not be read "
                f"({type(err).__name__}); check the endpoint and your connection"
            ) from err

    def model_info(self, repo_id: str, revision: str | None = None) -> Any:
        """`ModelInfo` of one repo with the `EXPAND` fields (retried; errors mapped)."""
        return self._call(
            lambda: self.api.model_info(
                repo_id,
                revision=revision,
                expand=list(EXPAND),  # type: ignore[arg-type]
                timeout=self.timeout,
            ),
            repo_id,
            "the model info",
        )

    def paths_info(self, repo_id: str, paths: Sequence[str], revision: str) -> dict[str, Any]:
        """path -> `RepoFile` (size, blob id, LFS sha256) for the files that exist."""
        if not paths:
            return {}
        found = self._call(
            lambda: self.api.get_paths_info(repo_id, list(paths), revision=revision),
            repo_id,
            "the file list",
        )
        return {f.path: f for f in found if hasattr(f, "size")}

    def get_range(
        self, repo_id: str, revision: str, path: str, start: int, end: int
    ) -> tuple[bytes, int]:
        """Bytes `[start, end)` of a file at a commit, and the body bytes transferred.

        One GET with `Range: bytes=start-(end-1)` through huggingface_hub's session; retried on
        429 (honouring Retry-After / RateLimit), 5xx, timeouts, resets and short bodies.

        Raises:
            GatedModelError, ModelNotFoundError, MalformedFileError, NetworkError.
        """
        url = hf_hub_url(repo_id, path, revision=revision, endpoint=self.endpoint)
        headers = self.headers({"Range": f"bytes={start}-{end - 1}"})

        def once() -> tuple[bytes, int]:
            resp = http_backoff(
                "GET",
                url,
                headers=headers,
                max_retries=0,
                retry_on_status_codes=(),
                follow_redirects=True,
                timeout=self.timeout,
            )
            if resp.status_code == 416:
                raise MalformedFileError(
                    f"{path} of {repo_id} is shorter than its header says (no bytes at "
                    f"{start}); the upload is truncated, re-upload it",
                    model_id=repo_id,
                    path=path,
                )
            if resp.status_code not in (200, 206):
                hf_raise_for_status(resp)
                raise NetworkError(
                    f"reading {path} of {repo_id} answered HTTP {resp.status_code}",
                    model_id=repo_id,
                    path=path,
                )
            body = resp.content
            if resp.status_code == 200:  # the server ignored the range: keep the part asked for
                if len(body) < end:
                    raise ShortBodyError(f"{len(body)} bytes for a file read up to {end}")
                return body[start:end], len(body)
            if len(body) != end - start:
                raise ShortBodyError(f"{len(body)} bytes for a {end - start}-byte range")
            return body, len(body)

        return self._call(once, repo_id, path)

    def _call(self, fn: Any, repo_id: str, what: str) -> Any:
        try:
            return self.retry.call(fn, what=what, model_id=repo_id)
        except HfHubHTTPError as err:
            raise _mapped(err, repo_id, what) from None


def iter_models(
    client: HubClient,
    *,
    authors: Sequence[str] = (),
    search: str | None = None,
    filters: Sequence[str] = (),
    sort: str = "downloads",
    limit: int | None = None,
    since: str | date | datetime | None = None,
) -> Iterator[Any]:
    """The models a crawl visits, as `ModelInfo`s with the `EXPAND` fields, each id once.

    Args:
        client: endpoint, token and retries.
        authors: one listing per author, one after the other; empty: all authors.
        search: substring of the repo id.
        filters: tags every model must carry, e.g. `children_filter("org/base")`.
        sort: `downloads`, `created`, `likes` or `modified`, descending.
        limit: at most this many models in all.
        since: keep models created at or after this date. Sorting by `created`, paging stops at
            the first older model; other sorts filter on the client and read every page.
    """
    cut = parse_since(since)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    # A server-side limit is only safe when the client keeps every model it is given in order.
    server_limit = limit if cut is None or sort == "created" else None
    seen: set[str] = set()
    for author in authors or (None,):
        listing = client.list_models(
            author=author, search=search, filters=filters, sort=sort, limit=server_limit
        )
        for info in listing:
            if info.id in seen:
                continue  # pages of a live listing may shift: never visit a model twice
            if cut is not None:
                created = getattr(info, "created_at", None)
                if created is None:
                    continue
                if created.tzinfo is None:
                    created = created.replace(tzinfo=timezone.utc)
                if created < cut:
                    if sort == "created":
                        break  # descending: everything after this is older
                    continue
            seen.add(info.id)
            yield info
            if limit is not None and len(seen) >= limit:
                return


# ---- reading ranges: HF cache, window cache, network -------------------------------------------


class ReadStats:
    """Bytes one model cost, by where they came from. Thread-safe counters.

    Attributes:
        fetched: body bytes received from the network (headers, index files, windows).
        cached: bytes served by the window cache.
        local: bytes read from the local HF cache's snapshot of the same commit.
        requests: range requests sent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fetched = 0
        self.cached = 0
        self.local = 0
        self.requests = 0

    def add(self, *, fetched: int = 0, cached: int = 0, local: int = 0, requests: int = 0) -> None:
        with self._lock:
            self.fetched += fetched
            self.cached += cached
            self.local += local
            self.requests += requests

    def __repr__(self) -> str:
        return (
            f"ReadStats(fetched={self.fetched}, cached={self.cached}, local={self.local}, "
            f"requests={self.requests})"
        )


@dataclass(frozen=True, slots=True)
class _RemoteFile:
    path: str
    size: int
    key: str  # LFS sha256, else git blob id: the content hash the window cache is keyed by


class _Reader:
    """Ranges of one repo's files at one commit, from the cheapest place that has them."""

    def __init__(
        self,
        client: HubClient,
        repo_id: str,
        revision: str,
        cache: WindowCache | None,
        snapshot: Path | None,
        stats: ReadStats | None = None,
    ):
        self.client = client
        self.repo_id = repo_id
        self.revision = revision
        self.cache = cache
        self.snapshot = snapshot
        self.files: dict[str, _RemoteFile] = {}
        self.stats = stats if stats is not None else ReadStats()
        self._held: dict[str, bytes] = {}  # path -> its first bytes, already paid for

    def hold(self, path: str, prefix: bytes) -> None:
        """Keep a file's first bytes: later reads inside them cost nothing."""
        self._held[path] = prefix

    def _local(self, f: _RemoteFile) -> Path | None:
        if self.snapshot is None:
            return None
        p = self.snapshot / f.path
        try:
            return p if p.is_file() and p.stat().st_size == f.size else None
        except OSError:
            return None

    def read(self, path: str, start: int, end: int) -> bytes:
        f = self.files[path]
        if not (0 <= start <= end <= f.size):
            raise ValueError(f"range [{start}, {end}) is outside {path} ({f.size} bytes)")
        if start == end:
            return b""
        held = self._held.get(path)
        if held is not None and end <= len(held):
            return held[start:end]
        local = self._local(f)
        if local is not None:
            with open(local, "rb") as fh:
                fh.seek(start)
                data = fh.read(end - start)
            if len(data) == end - start:
                self.stats.add(local=len(data))
                return data
        if self.cache is not None:
            cached = self.cache.get(f.key, start, end)
            if cached is not None:
                self.stats.add(cached=len(cached))
                return cached
        data, transferred = self.client.get_range(self.repo_id, self.revision, path, start, end)
        self.stats.add(fetched=transferred, requests=1)
        if self.cache is not None:
            self.cache.put(f.key, start, end, data)
        return data


def _hf_snapshot(repo_id: str, revision: str, hf_cache: Path | None) -> Path | None:
    if hf_cache is None:
        return None
    folder = hf_cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision
    return folder if folder.is_dir() else None


# ---- choosing weight files (mirrors hub.local._select_in) ------------------------------------


def _in_folder(names: Iterable[str], folder: str) -> list[str]:
    """Base names of the files directly in `folder` ("" for the root)."""
    prefix = f"{folder}/" if folder else ""
    return [n[len(prefix) :] for n in names if n.startswith(prefix) and "/" not in n[len(prefix) :]]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _subfolders(names: Iterable[str]) -> list[str]:
    subs = {n.split("/", 1)[0] for n in names if "/" in n}
    return sorted(s for s in subs if not s.startswith("."))


class _Opener:
    """Reads what `open_hub_model` needs: index files, headers, adapter config."""

    def __init__(self, reader: _Reader, names: list[str]):
        self.reader = reader
        self.names = set(names)
        self.repo_id = reader.repo_id

    def small_file(self, path: str) -> bytes:
        f = self.reader.files.get(path)
        if f is None:
            raise MalformedFileError(
                f"{path} of {self.repo_id} is listed but has no file info; the repo is "
                "incomplete, check it on the Hub",
                model_id=self.repo_id,
                path=path,
            )
        if f.size > 64 * 2**20:
            raise MalformedFileError(
                f"{path} of {self.repo_id} is {f.size} bytes, too large for what it should be",
                model_id=self.repo_id,
                path=path,
            )
        return self.reader.read(path, 0, f.size)

    def index(self, folder: str, name: str) -> dict[str, str]:
        """`weight_map` of a sharded checkpoint: tensor -> shard path from the repo root."""
        where = _join(folder, name)
        try:
            doc = json.loads(self.small_file(where).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
        wm = doc.get("weight_map") if isinstance(doc, dict) else None
        if not isinstance(wm, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in wm.items()
        ):
            raise MalformedFileError(
                f"{where} of {self.repo_id} has no valid weight_map; re-save the model.",
                model_id=self.repo_id,
                path=where,
            )
        out = {}
        for tensor, shard in wm.items():
            rel = posixpath.normpath(_join(folder, shard))
            # A shard path leaving the repo (`../x`, `/etc/x`) is never followed.
            if shard.startswith("/") or rel.startswith("..") or rel not in self.names:
                raise MalformedFileError(
                    f"{where} of {self.repo_id} lists the shard {shard!r}, which is not a file "
                    "of the repo; upload the missing shard or re-save the model.",
                    model_id=self.repo_id,
                    path=where,
                )
            out[tensor] = rel
        return out

    def select(self, folder: str) -> tuple[list[str], dict[str, str], bool]:
        here = set(_in_folder(self.names, folder))
        for name in _SINGLE_NAMES:
            if name in here:
                return [_join(folder, name)], {}, False
        for name in _INDEX_NAMES:
            if name in here:
                wm = self.index(folder, name)
                return sorted(set(wm.values())), wm, False
        if ADAPTER_NAME in here:
            return [_join(folder, ADAPTER_NAME)], {}, True
        return [_join(folder, n) for n in sorted(here) if n.endswith(".safetensors")], {}, False

    def header(self, path: str) -> SafetensorsHeader:
        f = self.reader.files[path]
        where = f"{self.repo_id}/{path}"
        first = f.size if f.size <= WHOLE_FILE else HEADER_PREFIX
        prefix = self.reader.read(path, 0, first)
        self.reader.hold(path, prefix)
        n = header_length(prefix[:8], file_size=f.size, where=where, model_id=self.repo_id)
        if 8 + n <= len(prefix):
            header_json = prefix[8 : 8 + n]
        else:
            header_json = prefix[8:] + self.reader.read(path, len(prefix), 8 + n)
        return parse_header(
            prefix[:8], header_json, file_size=f.size, where=where, model_id=self.repo_id
        )


def _no_safetensors(repo_id: str, names: list[str]) -> NoSafetensorsError:
    shallow = [n for n in names if n.count("/") <= 1]
    pickles = sorted(n for n in shallow if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        shown = ", ".join(pickles[:3]) + (" ..." if len(pickles) > 3 else "")
        msg = (
            f"{repo_id} has only pickle checkpoints ({shown}), which are never downloaded or "
            "unpickled; ask its authors for safetensors weights (the `convert` Space does it)."
        )
    else:
        msg = f"{repo_id} holds no *.safetensors weights at its root or one folder down."
    return NoSafetensorsError(msg, model_id=repo_id)


# ---- the model ---------------------------------------------------------------------------------


class HubModel(TensorIndex):
    """A model on the Hub at one commit; satisfies `fingerprint.protocol.TensorSource`.

    Attributes:
        record: the model's record (parameter count from its headers, `extra["adapter"]`).
        revision: the commit every byte is read at.
        headers: parsed safetensors headers by file path.
        files: weight files read, repo-relative.
        stats: bytes read so far by where they came from (network, window cache, HF cache).
        bytes_fetched: `stats.fetched`, the network bytes (headers, index files, windows).
    """

    def __init__(
        self,
        record: ModelRecord,
        headers: dict[str, SafetensorsHeader],
        tensors: dict[str, _Located],
        reader: _Reader,
    ):
        self.record = record
        self.headers = headers
        self.files: tuple[str, ...] = tuple(headers)
        self._tensors = tensors
        self._reader = reader

    @property
    def revision(self) -> str:
        return self._reader.revision

    @property
    def stats(self) -> ReadStats:
        return self._reader.stats

    @property
    def bytes_fetched(self) -> int:
        return self._reader.stats.fetched

    def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of tensor `name`'s data, offsets relative to its first byte.

        Raises:
            KeyError: no such tensor.
            ValueError: the range is not within the tensor.
            HubError: the bytes could not be read (gated, network, ...).
        """
        return self._reader.read(*self.locate_range(name, start, end))

    def __repr__(self) -> str:
        return f"HubModel({self.model_id!r}, revision={self.revision!r}, files={len(self.files)})"


def _candidates(names: list[str]) -> list[str]:
    """Files `open_hub_model` may read: weights, indexes and adapter configs, one level deep."""
    wanted = (".safetensors", ".safetensors.index.json", "adapter_config.json")
    return sorted(n for n in names if n.count("/") <= 1 and n.endswith(wanted))


def open_hub_model(
    model: Any,
    *,
    client: HubClient | None = None,
    revision: str | None = None,
    cache: WindowCache | None = None,
    hf_cache: str | os.PathLike[str] | None | bool = True,
    stats: ReadStats | None = None,
) -> HubModel:
    """Open a Hub model for fingerprinting: its file list, index and safetensors headers.

    Args:
        model: a repo id, or a `ModelInfo` from a listing with `EXPAND` fields (saves a call).
        client: the endpoint, token and retries (default `HubClient()`).
        revision: the commit to read when `model` is an id (default the current one).
        cache: the window cache; None reads every range from the network.
        hf_cache: the HF hub cache folder to read snapshots from; True finds it as
            huggingface_hub does (HF_HUB_CACHE, HF_HOME); False or None never looks.
        stats: counters to add this model's bytes to (also counts a model that fails to open).

    Raises:
        GatedModelError, ModelNotFoundError, NoSafetensorsError, MalformedFileError,
        NetworkError: see the module docstring.
    """
    client = client or HubClient()
    info = client.model_info(model, revision) if isinstance(model, str) else model
    names = _sibling_names(info)
    if info.sha is None or names is None:  # a listing without sha/siblings: ask for them
        info = client.model_info(info.id, revision)
        names = _sibling_names(info) or []
    repo_id, sha = info.id, info.sha
    record = record_from_info(info)
    if hf_cache is True:
        from hub.cache import default_cache_dir

        hf_cache = default_cache_dir()
    snapshot = _hf_snapshot(repo_id, sha, Path(hf_cache) if hf_cache else None)
    reader = _Reader(client, repo_id, sha, cache, snapshot, stats)
    wanted = _candidates(names)
    if not any(n.endswith(".safetensors") for n in wanted):
        raise _no_safetensors(repo_id, names)
    for path, f in client.paths_info(repo_id, wanted, sha).items():
        lfs = getattr(f, "lfs", None)
        key = getattr(lfs, "sha256", None) if lfs is not None else None
        reader.files[path] = _RemoteFile(path, int(f.size), key or f.blob_id)
    opener = _Opener(reader, names)
    groups: list[tuple[str, list[str], dict[str, str]]] = []
    files, wm, adapter = opener.select("")
    if files:
        groups.append(("", files, wm))
    else:
        for sub in _subfolders(names):
            sub_files, sub_wm, sub_adapter = opener.select(sub)
            if sub_files:
                groups.append((sub, sub_files, sub_wm))
                adapter = adapter or sub_adapter
    if not groups:
        raise _no_safetensors(repo_id, names)
    headers: dict[str, SafetensorsHeader] = {}
    for _, fs, _ in groups:
        for rel in fs:
            if rel not in reader.files:
                opener.small_file(rel)  # raises: listed, but paths-info does not know it
            headers[rel] = opener.header(rel)
    tensors = _index_tensors(groups, headers, repo_id)
    extra = {**record.extra, "adapter": adapter}
    if adapter and "adapter_config.json" in reader.files:
        base = _adapter_base(opener)
        if base:
            extra["adapter_base"] = base
    record = replace(
        record,
        parameter_count=sum(h.parameter_count for h in headers.values()),
        extra=extra,
    )
    return HubModel(record, headers, tensors, reader)


def _adapter_base(opener: _Opener) -> str | None:
    try:
        doc = json.loads(opener.small_file("adapter_config.json").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, HubError):
        return None  # metadata only: a broken adapter config never stops reading the weights
    base = doc.get("base_model_name_or_path") if isinstance(doc, dict) else None
    if isinstance(base, str) and base.count("/") == 1 and not base.startswith(("/", ".")):
        return base
    return None
