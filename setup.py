"""The one compiled module, collector._otlp_wire (see its source for why).

`optional=True`: without a C compiler the install still succeeds and the collector reads requests
through the protobuf runtime instead (same rows, slower; `vigil collector` logs which one it uses).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "collector._otlp_wire",
            ["collector/_otlp_wire.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
    ]
)
