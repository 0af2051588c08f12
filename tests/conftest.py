"""Shared pytest fixtures."""

import pytest

# --- hub_env: the real huggingface_hub client against hub.server (owner: hub/server.py) ---------


class HubEnv:
    """What `hub_env` gives a test: a private HF home and servers stopped at teardown.

    Attributes:
        home: the temporary HF_HOME (cache under `home / "hub"`).
    """

    def __init__(self, home):
        self.home = home
        self.servers = []

    def start(self, root, **kwargs):
        """Start `hub.server.serve(root, **kwargs)`; the server stops when the test ends."""
        from hub.server import serve

        server = serve(root, **kwargs)
        self.servers.append(server)
        return server

    def api(self, server, token=None):
        """An `HfApi` pointed at `server` (token None: anonymous)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=server.url, token=token if token is not None else False)


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """Isolate huggingface_hub for a test: no telemetry, no Xet, no token, a temp HF_HOME.

    huggingface_hub reads most settings into `huggingface_hub.constants` at import, so both the
    environment and those constants are patched. `hub_env.start(root, ...)` serves a zoo folder.
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

    env_obj = HubEnv(home)
    yield env_obj
    for server in env_obj.servers:
        server.stop()
    huggingface_hub.close_session()  # drop pooled connections to the stopped servers
