"""Shared pytest fixtures."""

import pytest

from tests.hf_cache import hf_home  # noqa: F401 (a fixture: a private HF_HOME)

# --- hub_env: the real huggingface_hub client against hub.emulator.server (owner: hub/emulator/server.py) ---------


# Where huggingface_hub's default endpoint points during a test: a closed local port, so that a
# call that forgot `endpoint=` fails fast instead of reaching the real Hub.
NOWHERE = "http://127.0.0.1:9"


class HubEnv:
    """What `hub_env` gives a test: a private HF home and servers stopped at teardown.

    Attributes:
        home: the temporary HF_HOME (cache under `home / "hub"`).
    """

    def __init__(self, home, monkeypatch):
        self.home = home
        self.servers = []
        self._monkeypatch = monkeypatch

    def start(self, root, *, use=False, **kwargs):
        """Start `hub.emulator.server.serve(root, **kwargs)`; the server stops when the test ends.

        With `use=True` it also becomes the default endpoint (see `use`).
        """
        from hub.emulator.server import serve

        server = serve(root, **kwargs)
        self.servers.append(server)
        if use:
            self.use(server)
        return server

    def use(self, server_or_url):
        """Make a server (or URL) the default endpoint: HF_ENDPOINT, `HfApi()` and the
        module-level helpers (`huggingface_hub.list_models`, `hf_hub_download`, ...)."""
        _point_default_endpoint(self._monkeypatch, getattr(server_or_url, "url", server_or_url))

    def api(self, server, token=None):
        """An `HfApi` pointed at `server` (token None: anonymous)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=server.url, token=token if token is not None else False)


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """Isolate huggingface_hub for a test: no telemetry, no Xet, no token, a temp HF_HOME.

    huggingface_hub reads most settings into `huggingface_hub.constants` at import, so both the
    environment and those constants are patched. The default endpoint points at a closed local
    port until `hub_env.use(server)` (or `start(root, use=True)`); `hub_env.start(root, ...)`
    serves a zoo folder.
    """
    home = tmp_path / "hf-home"
    home.mkdir()
    env = {
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_ETAG_TIMEOUT": "5",
        "HF_HUB_DOWNLOAD_TIMEOUT": "10",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN_PATH",
        "HF_XET_CACHE",
    ):
        monkeypatch.delenv(name, raising=False)

    import huggingface_hub
    from huggingface_hub import constants

    patched = {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_OFFLINE": False,
        "HF_HUB_ETAG_TIMEOUT": 5,
        "HF_HUB_DOWNLOAD_TIMEOUT": 10,
    }
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value, raising=False)

    _point_default_endpoint(monkeypatch, NOWHERE)
    env_obj = HubEnv(home, monkeypatch)
    yield env_obj
    for server in env_obj.servers:
        server.stop()
    huggingface_hub.close_session()  # drop pooled connections to the stopped servers


def _point_default_endpoint(monkeypatch, url):
    """huggingface_hub binds its endpoint at import (constants, URL template, module-level api)."""
    from huggingface_hub import constants, hf_api

    url = url.rstrip("/")
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    template = url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(hf_api.api, "endpoint", url)


# --- tiny_zoo: the tiny model zoo with known lineage (owner: lineage/lab/zoo.py) --------------


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """The tiny zoo (seed 0) as a folder Path, generated once per test session (~20 s).

    Shared by every test that asks for it: read it, never modify it.
    """
    from lineage.lab.zoo import generate_zoo

    return generate_zoo(tmp_path_factory.mktemp("tiny-zoo") / "zoo", size="tiny", seed=0).path


# --- crawl_zoo: a small Hub-like zoo for the hub and crawl tests (owner: tests/hub_helpers.py) ---


@pytest.fixture(scope="session")
def crawl_zoo(tmp_path_factory):
    """The crawl zoo, built once per session; tests that change files copy it first."""
    from tests.hub_helpers import build_zoo

    return build_zoo(tmp_path_factory.mktemp("crawl-zoo"))
