"""The fake Gemini API: started once per test session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.google_fake import GoogleFake


@pytest.fixture(scope="session")
def google_fake_server() -> Iterator[GoogleFake]:
    fake = GoogleFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def google_fake(google_fake_server: GoogleFake) -> GoogleFake:
    """The session's fake with no queued faults, scripts or recorded requests."""
    google_fake_server.reset()
    return google_fake_server
