"""huggingface_hub calls against one endpoint: listing pages, model info, file info and ranged
reads, with retries (`hub.retry`) and errors mapped to `hub.errors`.

`endpoint=` (else `HF_ENDPOINT`) and `HF_TOKEN` are honoured; the token is only ever put in
request headers by huggingface_hub's `build_hf_headers`: it is never logged, stored, printed or
put in a message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
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

from hub.errors import (
    GatedModelError,
    HubError,
    MalformedFileError,
    ModelNotFoundError,
    NetworkError,
)
from hub.retry import RetryPolicy, ShortBodyError, transport_errors

__all__ = ["EXPAND", "SORTS", "HubClient"]

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
