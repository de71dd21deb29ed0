"""The fake Anthropic API: started once per test session, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_fake import AnthropicFake


@pytest.fixture(scope="session")
def anthropic_fake_server() -> Iterator[AnthropicFake]:
    fake = AnthropicFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def anthropic_fake(anthropic_fake_server: AnthropicFake) -> AnthropicFake:
    """The session's fake with no queued faults, scripts or recorded requests."""
    anthropic_fake_server.reset()
    return anthropic_fake_server
