"""huggingface_hub calls against one endpoint: listing pages, model info, file info and ranged
reads, with retries (`hub.retry`) and errors mapped to `hub.errors`.

Listing pages and ranged reads go through `hub.http` (bodies streamed and capped, one deadline
per request, few redirects, the token sent to the endpoint's origin only, never along a redirect
or a `Link` to another host); model info and paths-info through huggingface_hub's own calls.

`endpoint=` (else `HF_ENDPOINT`) and `HF_TOKEN` are honoured; the token is only ever put in
request headers by huggingface_hub's `build_hf_headers`: it is never logged, stored, printed or
put in a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
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
from huggingface_hub.utils import build_hf_headers

from hub import bounded_json, http
from hub.errors import (
    GatedModelError,
    HubError,
    MalformedFileError,
    ModelNotFoundError,
    NetworkError,
)
from hub.retry import RetryPolicy, ShortBodyError, http_errors

__all__ = ["EXPAND", "LISTING_PAGE_MAX", "SORTS", "HubClient", "is_commit", "is_repo_id"]

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
_HTTP_ERRORS = http_errors()
_log = logging.getLogger(__name__)
# The most bytes one listing page may take: a 1,000-model page with every field is a few MB.
LISTING_PAGE_MAX = 32 * 2**20
# CLI sort names -> huggingface_hub's `sort=` values (which it maps to the API's keys).
SORTS = {
    "downloads": "downloads",
    "created": "created_at",
    "likes": "likes",
    "modified": "last_modified",
}
# The same sorts as the API names them.
_API_SORTS = {
    "downloads": "downloads",
    "created": "createdAt",
    "likes": "likes",
    "modified": "lastModified",
}

# A Hub repo id: `name` or `org/name`, parts of letters, digits, `-`, `_`, `.`, never `..`.
_REPO_ID = re.compile(r"(?!.*\.\.)[A-Za-z0-9][\w.-]{0,95}(?:/[A-Za-z0-9][\w.-]{0,95})?", re.ASCII)
_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_repo_id(value: object) -> bool:
    """Whether a server-given id is a Hub repo id (`name`, `org/name`; no `..`, no `/x`)."""
    return isinstance(value, str) and _REPO_ID.fullmatch(value) is not None


def is_commit(value: object) -> bool:
    """Whether a server-given revision is a commit sha (40 lowercase hex digits)."""
    return isinstance(value, str) and _COMMIT.fullmatch(value) is not None


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
        timeout: seconds per connect and per read (default huggingface_hub's download timeout).
        deadline: seconds for a whole listing page or range read, redirects and body included
            (`hub.http.DEADLINE_S`): a server that drips its answer cannot hold a crawl.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | bool | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        deadline: float = http.DEADLINE_S,
    ):
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.__token = token
        self.retry = retry or RetryPolicy()
        self.timeout = timeout if timeout is not None else float(constants.HF_HUB_DOWNLOAD_TIMEOUT)
        self.deadline = deadline
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

        Pages are read here (`hub.http.get`: each page capped at `LISTING_PAGE_MAX` bytes, the
        token sent only to the endpoint's origin, `Link: rel=next` followed) and each page is
        retried. An entry the library cannot read as a `ModelInfo` but with a usable `id`
        is yielded as a bare `ModelInfo(id=...)`, so it is opened (and fails, if it must) as
        that model; an entry without one is skipped and logged. Stop iterating and no further
        page is requested.

        Raises:
            ValueError: an unknown sort.
            NetworkError: the listing could not be read, or is not a listing (one line).
        """
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        params: list[tuple[str, object]] = [
            (k, v) for k, v in (("author", author), ("search", search)) if v
        ]
        params += [("filter", f) for f in filters]
        params.append(("sort", _API_SORTS[sort]))
        if limit is not None:
            params.append(("limit", limit))
        params += [("expand", e) for e in EXPAND]
        url: str | None = f"{self.endpoint}/api/models"
        given = 0
        while url is not None:
            page, url = self._listing_page(url, params)
            params = []  # the next link carries its own query
            for item in page:
                info = listing_entry(item)
                if info is None:
                    continue
                yield info
                given += 1
                if limit is not None and given >= limit:
                    return

    def _listing_page(
        self, url: str, params: list[tuple[str, object]]
    ) -> tuple[list[Any], str | None]:
        """One page of the listing (retried) and the next page's URL."""
        what = "the model listing"

        def once() -> http.Answer:
            answer = http.get(
                url,
                headers=self.headers(),
                auth_origin=self.endpoint,
                what=f"{what} of {self.endpoint}",
                max_bytes=LISTING_PAGE_MAX,
                timeout=self.timeout,
                deadline_s=self.deadline,
                params=params or None,
            )
            answer.raise_for_status()
            return answer

        try:
            answer = self.retry.call(once, what=what)
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            raise NetworkError(
                f"the model listing of {self.endpoint} failed with HTTP {status}; check the "
                "endpoint, the filters and your connection"
            ) from None
        except _HTTP_ERRORS as err:
            raise NetworkError(
                f"the model listing of {self.endpoint} could not be read "
                f"({type(err).__name__}); check the endpoint and your connection"
            ) from None
        try:
            page = bounded_json.loads(answer.body)
        except bounded_json.JsonBoundError as err:
            raise NetworkError(
                f"the model listing of {self.endpoint} {err}; check that the endpoint is a Hub"
            ) from None
        if not isinstance(page, list):
            raise NetworkError(
                f"the model listing of {self.endpoint} is a JSON {type(page).__name__}, not a "
                "list of models; check that the endpoint is a Hub"
            )
        return page, answer.links.get("next")

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
        headers = self.headers()

        def once() -> tuple[bytes, int]:
            # Streamed and capped: a 206 longer than the range, or a 200 (the server ignored the
            # range) is read no further than the bytes asked for.
            resp = http.get(
                url,
                headers=headers,
                auth_origin=self.endpoint,
                what=f"{path} of {repo_id}",
                max_bytes=end - start,
                byte_range=(start, end),
                timeout=self.timeout,
                deadline_s=self.deadline,
                model_id=repo_id,
            )
            if resp.status == 416:
                raise MalformedFileError(
                    f"{path} of {repo_id} is shorter than its header says (no bytes at "
                    f"{start}); the upload is truncated, re-upload it",
                    model_id=repo_id,
                    path=path,
                )
            if resp.status not in (200, 206):
                resp.raise_for_status()
                raise NetworkError(
                    f"reading {path} of {repo_id} answered HTTP {resp.status}",
                    model_id=repo_id,
                    path=path,
                )
            body = resp.body
            if resp.status == 200:  # the server ignored the range: keep the part asked for
                if len(body) < end:
                    raise ShortBodyError(f"{len(body)} bytes for a file read up to {end}")
                return body[start:end], len(body)
            if len(body) != end - start or not resp.complete:
                raise ShortBodyError(f"{len(body)} bytes for a {end - start}-byte range")
            return body, len(body)

        return self._call(once, repo_id, path)

    def _call(self, fn: Any, repo_id: str, what: str) -> Any:
        try:
            return self.retry.call(fn, what=what, model_id=repo_id)
        except HfHubHTTPError as err:
            raise _mapped(err, repo_id, what) from None
        except _HTTP_ERRORS as err:  # not a transport failure: a bad body (gzip), a bad URL
            raise NetworkError(
                f"reading {what} of {repo_id} failed ({type(err).__name__}: "
                f"{str(err)[:120]}); check the repo on the Hub",
                model_id=repo_id,
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
            # the library could not read the answer: not JSON, too deep, not the API's shape
            raise NetworkError(
                f"the Hub's answer for {what} of {repo_id} is not what the API returns "
                f"({type(err).__name__}); check the endpoint, then run the crawl again",
                model_id=repo_id,
            ) from None


def listing_entry(item: object) -> Any:
    """A `ModelInfo` from one listing entry; a bare one (`id` only) when the library cannot read
    the rest; None (logged) when the entry has no usable id."""
    from huggingface_hub.hf_api import ModelInfo

    fields: dict[str, Any] = {"siblings": None, **item} if isinstance(item, dict) else {}
    repo_id = fields.get("id")
    if not is_repo_id(repo_id):
        _log.warning("skipped a listing entry without a valid model id: %.80r", item)
        return None
    try:
        return ModelInfo(**fields)
    except Exception as err:  # garbage fields: the model is opened by id, and fails there
        _log.warning("listing entry %s is malformed (%s); reading it by id", repo_id, err)
        return ModelInfo(id=repo_id)
