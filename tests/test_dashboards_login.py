"""The dashboards' OIDC gate: with [auth] dashboards = "oidc" no page shows data before st.login."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vigil.up import dashboards_command

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
OIDC = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "not-a-real-secret-but-long-enough",
    "client_id": "vigil",
    "client_secret": "shh",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


@pytest.fixture
def oidc_env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("VIGIL_AUTH_DASHBOARDS", "oidc")
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    return tmp_path


def test_without_login_only_the_login_button_is_shown(oidc_env) -> None:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = OIDC
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.metric and not at.sidebar.selectbox, "no data, no filters before login"


def test_missing_oidc_settings_refuse_to_run_open(oidc_env) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "secrets.toml" in at.error[0].value
    assert not at.button


def test_dashboards_listen_on_loopback_only() -> None:
    command = dashboards_command(8501, Path(APP))
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
