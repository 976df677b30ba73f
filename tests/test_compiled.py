"""The modules setup.py compiles with mypyc run compiled, and a stale build is found.

Held to: with a C compiler at install (as in CI), every module setup.py lists is imported from its
extension file, so the suite tests the code the collector runs; `stale_modules` names a compiled
module whose source is newer than its build (the collector warns about it at start-up).
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import sys
import types
from pathlib import Path

import pytest

from collector.compiled import compiled_modules, stale_modules
from tests.conftest import can_compile

ROOT = Path(__file__).resolve().parents[1]


def mypyc_modules() -> list[str]:
    """The module names setup.py's MYPYC_MODULES lists."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    [paths] = [
        node.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "MYPYC_MODULES"
    ]
    names = [path.removesuffix(".py").replace("/", ".") for path in ast.literal_eval(paths)]
    return [name.removesuffix(".__init__") for name in names]


def test_listed_modules_run_compiled() -> None:
    if os.environ.get("VIGIL_PURE_PYTHON"):
        pytest.skip("VIGIL_PURE_PYTHON is set: installed uncompiled on purpose")
    if not can_compile():
        pytest.skip("no C compiler or Python headers here: the modules run as Python")
    names = mypyc_modules()
    assert "collector.normalize" in names
    for name in names:
        importlib.import_module(name)
    uncompiled = sorted(set(names) - set(compiled_modules()))
    assert not uncompiled, f"not compiled: {uncompiled}; run `uv sync --reinstall-package vigil`"
    assert not stale_modules(), "compiled from older sources: run `uv sync`"


def test_a_source_newer_than_its_build_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = tmp_path / f"fresh{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    old_build = tmp_path / f"edited{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    for path in (old_build, tmp_path / "edited.py", tmp_path / "fresh.py", built):  # in mtime order
        path.write_bytes(b"")
    os.utime(old_build, (1_000_000, 1_000_000))
    os.utime(tmp_path / "edited.py", (2_000_000, 2_000_000))
    os.utime(tmp_path / "fresh.py", (2_000_000, 2_000_000))
    os.utime(built, (3_000_000, 3_000_000))
    for name, path in (("collector._test_edited", old_build), ("collector._test_fresh", built)):
        module = types.ModuleType(name)
        module.__file__ = str(path)
        monkeypatch.setitem(sys.modules, name, module)
    assert {"collector._test_edited", "collector._test_fresh"} <= set(compiled_modules())
    assert "collector._test_edited" in stale_modules()
    assert "collector._test_fresh" not in stale_modules()
