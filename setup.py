"""The compiled parts: collector._otlp_wire (see its source for why), and the decode workers' hot
pure-Python modules compiled with mypyc.

mypyc turns the normalizer's many small dict and string operations into C calls: a decode
worker's CPU per span drops ~15% (bench/README.md, session 7). The modules stay ordinary Python
source: `VIGIL_PURE_PYTHON=1 uv sync` installs them uncompiled (for py-spy, which cannot see
into compiled frames, or to debug them), and without a C compiler both parts are left out and
the collector runs the same code as Python (slower; `vigil collector` logs it).
"""

import os
import shutil
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Each must type-check under mypy (mypyc enforces the annotations at run time). Not here:
# store/quality/rules.py (its `Rules` caches with functools.cached_property, which needs the
# instance __dict__ that mypyc's classes do not have).
MYPYC_MODULES = [
    "collector/normalize.py",
    "collector/decode_traces.py",
    "collector/quality.py",
    "collector/conventions/__init__.py",
    "collector/conventions/cost.py",
    "collector/conventions/messages.py",
    "collector/conventions/openinference.py",
    "collector/conventions/openllmetry.py",
    "collector/conventions/otel_genai.py",
    "store/quality/__init__.py",
    "store/quality/refusal.py",
    "store/quality/signature.py",
    "store/quality/validation.py",
]


def have_compiler() -> bool:
    return shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is not None


def remove_compiled() -> None:
    """An editable install builds in the source tree, where Python would keep loading an earlier
    build's extension files over the sources. Every build starts by removing mypyc's: a module
    compiled before and no longer (another checkout of setup.py) would load a shared library that
    lacks it and fail to import."""
    root = Path(__file__).parent
    for package in ("collector", "store"):
        for path in (root / package).rglob("*"):
            if path.suffix in (".so", ".pyd") and path.with_name(path.name.split(".")[0] + ".py").exists():
                path.unlink()
    for path in root.glob("vigil_native__mypyc.*"):
        if path.suffix in (".so", ".pyd"):
            path.unlink()


class BuildExt(build_ext):
    def run(self) -> None:
        remove_compiled()  # here, not at import: setup.py also runs to answer metadata queries
        super().run()


def mypyc_extensions() -> list[Extension]:
    if os.environ.get("VIGIL_PURE_PYTHON") or not have_compiler():
        return []
    from mypyc.build import mypycify

    # One shared library for all of them (so they call each other natively), a top-level
    # `vigil_native__mypyc` module: mypyc derives the compiled packages' __path__ from its place.
    return mypycify(
        ["--ignore-missing-imports", "--follow-imports=silent", *MYPYC_MODULES],
        opt_level="3",
        group_name="vigil_native",
    )


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "collector._otlp_wire",
            ["collector/_otlp_wire.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        ),
        *mypyc_extensions(),
    ],
)
