"""Fixtures for the service tests: sample catalogs (v1 and v2) and web servers on them.

The catalogs are built once per test session, with a hostile FITS file among
them; the servers are real ``catalog web`` subprocesses. Helpers live in
``tests/support/services.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.sample import write_sample
from tests.support.services import (
    HOSTILE_FILE,
    HOSTILE_FILTER,
    HOSTILE_OBJECT,
    LAYOUTS,
    SAMPLE_FILES,
    SampleCatalog,
    WebServer,
    build_sample,
    write_fits,
)


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture folder: the synthetic sample plus one file with hostile headers."""
    raw = tmp_path_factory.mktemp("raw")
    write_sample(raw, SAMPLE_FILES, seed=3)
    write_fits(
        raw / "2024-05-01" / "hostile" / HOSTILE_FILE,
        OBJECT=HOSTILE_OBJECT,
        FILTER=HOSTILE_FILTER,
        TELESCOP="<u>scope</u>",
    )
    return raw


@pytest.fixture(scope="session")
def sample_v1(tmp_path_factory: pytest.TempPathFactory, sample_raw: Path) -> SampleCatalog:
    return build_sample(tmp_path_factory.mktemp("catalog_v1"), sample_raw, "v1")


@pytest.fixture(scope="session")
def sample_v2(tmp_path_factory: pytest.TempPathFactory, sample_raw: Path) -> SampleCatalog:
    return build_sample(tmp_path_factory.mktemp("catalog_v2"), sample_raw, "v2")


@pytest.fixture(scope="session")
def web_v1(sample_v1: SampleCatalog) -> Iterator[WebServer]:
    server = WebServer(sample_v1.db)
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="session")
def web_v2(sample_v2: SampleCatalog) -> Iterator[WebServer]:
    server = WebServer(sample_v2.db)
    yield server
    assert server.stop() == 0


@pytest.fixture(params=LAYOUTS)
def site(request: pytest.FixtureRequest) -> tuple[WebServer, SampleCatalog]:
    """The web server on the sample catalog, once per schema version."""
    layout = request.param
    return (request.getfixturevalue(f"web_{layout}"), request.getfixturevalue(f"sample_{layout}"))
