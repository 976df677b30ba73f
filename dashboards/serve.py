"""`python -m dashboards.serve run APP [streamlit options]`: Streamlit, with the store opened as it starts.

What `vigil dashboards` and `vigil up` run (vigil.up.dashboards_command). Opening the store's connection takes
a few seconds at 1M calls (views bound over every file's footer, the memo of the live dates built); done here
in a background thread while Streamlit starts, the first visitor's page finds it ready (dashboards.data.warm_up:
the connection is shared by every session). The store and config are read as dashboards/app.py reads them.
"""

from __future__ import annotations

import logging
import os
import threading

from streamlit.web.cli import main as streamlit_main

logger = logging.getLogger(__name__)


def _warm() -> None:
    from dashboards.data import store_at, warm_up
    from store.config import load_config

    try:
        config = load_config(os.environ.get("VIGIL_CONFIG") or None)
        warm_up(store_at(config.store.data_dir, config))
    except Exception:  # the first page opens the store itself and shows what is wrong
        logger.exception("opening the store ahead of the first page failed")


if __name__ == "__main__":
    # not a daemon: the server stopping during the warm-up waits for it (a daemon thread inside DuckDB as the
    # interpreter ends aborts the process)
    threading.Thread(target=_warm, name="vigil-warm-up").start()
    streamlit_main(prog_name="streamlit")
