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


def compiled_modules() -> dict[str, tuple[Path, Path]]:
    """Imported vigil modules loaded from an extension file with a `.py` source beside it:
    name → (source, extension file)."""
    found = {}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if name.startswith(_PACKAGES) and origin and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            built = Path(origin)
            source = built.with_name(built.name.split(".", 1)[0] + ".py")
            if source.exists():
                found[name] = (source, built)
    return found


def stale_modules(compiled: dict[str, tuple[Path, Path]] | None = None) -> list[str]:
    """Those of `compiled` (default: `compiled_modules()`) whose source changed after they were built."""
    compiled = compiled_modules() if compiled is None else compiled
    return sorted(name for name, (source, built) in compiled.items() if source.stat().st_mtime > built.stat().st_mtime)
