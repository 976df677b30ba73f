"""The dashboards' login gate: with `[auth] dashboards = "oidc"` every page needs Streamlit's OIDC login.

Streamlit does the OpenID Connect flow itself (`st.login`, Streamlit ≥ 1.42 with Authlib); the
provider (Google, Microsoft Entra, Okta, Auth0, Keycloak, ...) is configured in
`.streamlit/secrets.toml` under `[auth]` (redirect_uri, cookie_secret, client_id, client_secret,
server_metadata_url). This module only decides whether the page may run. Without that `[auth]`
table the dashboards refuse to show data rather than run open.
"""

from __future__ import annotations

import streamlit as st

SECRETS_HINT = """`[auth] dashboards = "oidc"` is set, but Streamlit has no `[auth]` section in
`.streamlit/secrets.toml`. Add one, then restart `vigil dashboards`:

```toml
[auth]
redirect_uri = "https://vigil.example.com/oauth2callback"
cookie_secret = "a long random string"
client_id = "..."
client_secret = "..."
server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"
```"""


def require_login() -> None:
    """Return only for a logged-in visitor; otherwise show a login button (or what to fix) and stop."""
    try:
        configured = "auth" in st.secrets
    except FileNotFoundError:  # no secrets.toml at all
        configured = False
    if not configured:
        st.error(SECRETS_HINT)
        st.stop()
    if not st.user.get("is_logged_in"):  # absent (not False) where no auth ran at all
        st.title("vigil")
        st.write("Log in to see the traces of your agents.")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()
    st.sidebar.caption(f"Logged in as {st.user.get('email') or st.user.get('name') or 'you'}")
    st.sidebar.button("Log out", on_click=st.logout)
