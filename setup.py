"""Build configuration that pyproject.toml cannot express: the optional C speedups.

``castlewatch.grammar._speedups`` is optional: when it cannot be compiled (no C
compiler), the install still succeeds and castlewatch uses its pure-Python matchers,
which give the same results (``castlewatch.grammar.literals``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "castlewatch.grammar._speedups",
            sources=["castlewatch/grammar/_speedups.c", "castlewatch/grammar/_json_time.c"],
            depends=["castlewatch/grammar/_json_time.h"],
            optional=True,
        )
    ]
)
