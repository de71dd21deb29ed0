"""Settings: precedence, validation, and the generated docs staying in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from baton.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_environment_beats_config_file_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "baton.toml"
    config.write_text('max_messages = 12\ndefault_cache_mode = "off"\n')
    monkeypatch.setenv("BATON_CONFIG_FILE", str(config))
    monkeypatch.setenv("BATON_MAX_MESSAGES", "7")
    settings = Settings()
    assert settings.max_messages == 7  # environment wins
    assert settings.default_cache_mode == "off"  # file beats default
    assert Settings(max_messages=3).max_messages == 3  # explicit argument wins


def test_provider_variables_keep_their_usual_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    settings = Settings()
    assert settings.openai_api_key == "sk-test"
    assert settings.redis_url == "redis://example:6379/0"


def test_key_cache_can_never_exceed_sixty_seconds() -> None:
    with pytest.raises(ValidationError):
        Settings(key_cache_seconds=61)


def test_time_scale_shrinks_every_duration() -> None:
    assert Settings(time_scale=0.01).durations.minute == pytest.approx(0.6)


def test_configuration_doc_matches_the_code() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen-config-doc.py", "--check"], cwd=ROOT, check=False
    )
    assert result.returncode == 0, "docs/configuration.md is stale: run scripts/gen-config-doc.py"
