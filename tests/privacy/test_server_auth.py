"""The local Prefect API answers only its owner: Prefect's basic auth with a secret in the owner-only folder."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.error
import urllib.request

import pytest

from pipeline.errors import ConfigError
from pipeline.prefect_auth import CLIENT_ENV, auth_file, configure_client, ensure_auth_string, read_auth_string


def test_the_secret_is_made_once_owner_only_and_refused_when_others_can_read_it(tmp_path):
    home = tmp_path / ".alliance-prefect"
    home.mkdir(mode=0o700)
    first = ensure_auth_string(home)
    assert first.startswith("alliance:") and len(first) > 40 and ensure_auth_string(home) == first
    assert stat.S_IMODE(auth_file(home).stat().st_mode) == 0o600
    os.chmod(auth_file(home), 0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        read_auth_string(home)


def test_clients_of_a_loopback_server_read_the_secret(tmp_path, monkeypatch):
    home = tmp_path / "h"
    home.mkdir()
    secret = ensure_auth_string(home)
    monkeypatch.delenv(CLIENT_ENV, raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "https://prefect.example.org/api")
    assert not configure_client(home) and CLIENT_ENV not in os.environ  # a remote server has its own credentials
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    os.chmod(auth_file(home), 0o644)
    assert not configure_client(home) and CLIENT_ENV not in os.environ  # others could read it: not used
    os.chmod(auth_file(home), 0o600)
    assert configure_client(home) and os.environ[CLIENT_ENV] == secret


def _get(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url, data=json.dumps({"limit": 1}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_background_server_refuses_requests_without_its_secret(tmp_path):
    from flows.server import BackgroundServer

    server = BackgroundServer(None)
    try:
        server.wait_ready(timeout_s=180)
        url = server.url + "/flow_runs/filter"
        assert _get(url) == 401  # another local user: no runs, no logs, no new flow runs
        assert _get(url, "alliance:wrong") == 401
        assert _get(url, server.auth_string) == 200
    finally:
        server.stop()
