"""Which of vigil's modules run compiled by mypyc (setup.py), and which of those are out of date.

A compiled module is an extension file beside its `.py` source, and Python loads the extension:
edit the source without rebuilding (`uv run` and `uv sync` rebuild; a bare `.venv/bin/python`
does not) and the old code keeps running. The collector warns about that at start-up.
"""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

_PACKAGES = ("collector.", "store.")


def compiled_modules() -> dict[str, Path]:
    """Imported vigil modules loaded from an extension file that has a `.py` source beside it."""
    found = {}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if name.startswith(_PACKAGES) and origin and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            source = Path(origin).with_name(Path(origin).name.split(".", 1)[0] + ".py")
            if source.exists():
                found[name] = source
    return found


def stale_modules() -> list[str]:
    """Compiled modules whose source changed after they were built."""
    stale = []
    for name, source in compiled_modules().items():
        built = Path(sys.modules[name].__file__ or "")
        if source.stat().st_mtime > built.stat().st_mtime:
            stale.append(name)
    return sorted(stale)
