"""Shared fixtures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from castlewatch.grammar import literals

sys.path.insert(0, str(Path(__file__).parent))  # tests/aws_emulator.py


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


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """One moto server (``ThreadedMotoServer`` on 127.0.0.1, a free port) for the session."""
    from aws_emulator import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def moto(moto_server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's moto server, emptied, with fake credentials and a region in the
    environment and no AWS config file read; yields its URL."""
    from aws_emulator import FAKE_ENV, reset_moto

    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for key in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    reset_moto(moto_server_url)
    return moto_server_url
