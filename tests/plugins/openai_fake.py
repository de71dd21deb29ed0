"""The fake OpenAI API: one server per test session (per xdist worker), reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_fake import OpenAIFake


@pytest.fixture(scope="session")
def openai_fake_server() -> Iterator[OpenAIFake]:
    fake = OpenAIFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def openai_fake(openai_fake_server: OpenAIFake) -> Iterator[OpenAIFake]:
    """The session's fake with no queued faults, scripts or recorded requests."""
    openai_fake_server.reset()
    yield openai_fake_server
    openai_fake_server.reset()
