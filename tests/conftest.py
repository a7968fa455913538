"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from castlewatch.grammar import literals


@pytest.fixture(params=["c", "python"])
def literal_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once per backend of :mod:`castlewatch.grammar.literals`.

    The C backend is skipped where the extension is not built;
    ``test_speedups.py::test_extension_is_built`` fails there instead.
    """
    if request.param not in literals.AVAILABLE:
        pytest.skip("castlewatch.grammar._speedups is not built")
    before = literals.backend()
    literals.use_backend(request.param)
    yield request.param
    literals.use_backend(before)
