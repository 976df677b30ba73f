"""vigil dashboards: the Streamlit entry point (`streamlit run dashboards/app.py`).

Reads the config (file from env `VIGIL_CONFIG`, settings from `VIGIL_*` env vars, the store from
`VIGIL_STORE_DATA_DIR`, default `vigil-data`), draws the shared sidebar and runs the chosen page
from `app_pages/`. An empty store gets a hint on how to send data instead of empty charts.
Pages only read the store, except two reviewer actions on the Traces page (dashboards/actions.py):
recording a task's outcome verdict and picking a call for replay.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboards.data import filter_options, open_store
from dashboards.login import require_login
from dashboards.sidebar import render_sidebar
from store.config import ConfigError, load_config

_PAGES = Path(__file__).parent / "app_pages"

EMPTY_STORE_HINT = """No traces in `{root}` yet. Start the collector and point your agents'
OpenTelemetry exporter at it:

```bash
uv run vigil collector --data-dir {root}
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317
export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
```

Spans show up here within seconds of arriving."""


def main() -> None:
    st.set_page_config(page_title="vigil", page_icon=":material/visibility:", layout="wide")
    try:
        config = load_config(os.environ.get("VIGIL_CONFIG") or None)
    except ConfigError as exc:
        st.error(f"vigil could not read its configuration: {exc}")
        st.stop()
    if config.auth.dashboards == "oidc":
        require_login()
    store = open_store(config.store.data_dir, config)
    page = st.navigation(
        [
            st.Page(_PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
            st.Page(_PAGES / "cost.py", title="Cost", icon=":material/payments:", url_path="cost"),
            st.Page(_PAGES / "traces.py", title="Traces", icon=":material/search:", url_path="traces"),
            st.Page(_PAGES / "quality.py", title="Quality", icon=":material/verified:", url_path="quality"),
            st.Page(_PAGES / "latency.py", title="Latency & errors", icon=":material/timer:", url_path="latency"),
            st.Page(_PAGES / "replay.py", title="Replay", icon=":material/replay:", url_path="replay"),
        ]
    )
    render_sidebar(filter_options(store) if not store.is_empty else {})
    st.sidebar.caption(f"Store: `{store.root}`")
    if store.is_empty:
        st.title("vigil")
        st.info(EMPTY_STORE_HINT.format(root=store.root))
        st.stop()
    page.run()


main()
