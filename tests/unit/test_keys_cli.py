"""``baton keys``: create, revoke and list through ``baton.cli.main``, on a real
embedded store in a temporary ``BATON_DATA_DIR``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baton import auth, cli
from baton.clock import SystemClock
from baton.config import get_settings
from baton.errors import AuthenticationError
from baton.store import ApiKeyRecord, get_store


def reset_caches() -> None:
    get_settings.cache_clear()
    get_store.cache_clear()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh embedded store for each test, reached the way the CLI reaches it."""
    path = tmp_path / "baton"
    monkeypatch.setenv("BATON_DATA_DIR", str(path))
    monkeypatch.setenv("BATON_STORE", "embedded")
    monkeypatch.delenv("BATON_CONFIG_FILE", raising=False)
    # Build only the `keys` subcommand: the other subcommands' modules (the web server)
    # are not what these tests are about and are heavy to import.
    monkeypatch.setattr(cli, "_SUBCOMMANDS", {"keys": "baton.keys_cli"})
    reset_caches()
    yield path
    reset_caches()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["keys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def authenticate(key: str) -> ApiKeyRecord:
    """Authenticate as the server would, with a store opened afresh from the data dir."""
    reset_caches()
    store = get_store(get_settings())
    return auth.Authenticator(store, SystemClock(), cache_seconds=0).authenticate(f"Bearer {key}")


def create_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "create", "--user", "alice", "--tier", "pro", "--json", *extra)
    assert (code, err) == (0, "")
    created: dict[str, Any] = json.loads(out)
    return created


def test_create_prints_a_key_that_authenticates(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "create", "--user", "alice", "--tier", "pro")

    assert (code, err) == (0, "")
    key = next(line.split()[1] for line in out.splitlines() if line.startswith("api_key:"))
    key_id = next(line.split()[1] for line in out.splitlines() if line.startswith("key_id:"))
    assert out.count(key) == 1
    record = authenticate(key)
    assert (record.key_id, record.user, record.tier) == (key_id, "alice", "pro")
    assert (data_dir / "store.sqlite3").exists()


def test_create_json_with_overrides(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_json(
        capsys,
        "--rpm",
        "10",
        "--tpm",
        "2000",
        "--monthly-budget-usd",
        "25.50",
        "--allowed-models",
        "openai/gpt-4o-mini, simulated/echo",
    )

    assert "key_hash" not in created
    assert (created["user"], created["tier"], created["revoked_at"]) == ("alice", "pro", None)
    record = authenticate(created["api_key"])
    assert record.key_id == created["key_id"]
    assert record.overrides.requests_per_minute == 10
    assert record.overrides.tokens_per_minute == 2000
    assert record.overrides.monthly_budget_micro_usd == 25_500_000
    assert record.overrides.allowed_models == ["openai/gpt-4o-mini", "simulated/echo"]


def test_revoke_stops_the_key(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_json(capsys)

    code, out, _ = run(capsys, "revoke", created["key_id"])

    assert code == 0 and created["key_id"] in out
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticate(created["api_key"])


def test_revoking_an_unknown_key_exits_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "revoke", "nosuchkeyid")
    assert (code, out) == (1, "")
    assert "no key with key_id 'nosuchkeyid'" in err


def test_list_never_shows_keys_or_hashes(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    active = create_json(capsys, "--rpm", "7")
    revoked = create_json(capsys)
    assert run(capsys, "revoke", revoked["key_id"])[0] == 0
    hashes = [auth.hash_key(item["api_key"]) for item in (active, revoked)]

    code, out, _ = run(capsys, "list", "--user", "alice")
    json_code, json_out, _ = run(capsys, "list", "--user", "alice", "--json")

    assert code == json_code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [active["key_id"], revoked["key_id"]]
    assert "active" in lines[0] and '"requests_per_minute": 7' in lines[0]
    assert "revoked" in lines[1]
    listed = json.loads(json_out)
    assert [item["key_id"] for item in listed] == [active["key_id"], revoked["key_id"]]
    assert all("key_hash" not in item and "api_key" not in item for item in listed)
    for secret in [active["api_key"], revoked["api_key"], *hashes]:
        assert secret not in out and secret not in json_out


def test_listing_a_user_without_keys(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--user", "nobody")
    assert code == 0 and "no keys" in out
    assert run(capsys, "list", "--user", "nobody", "--json")[1].strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--user", "alice", "--tier", "platinum"],
        ["create", "--tier", "pro"],
        ["create", "--user", "alice", "--tier", "pro", "--rpm", "0"],
        ["create", "--user", "alice", "--tier", "pro", "--tpm", "ten"],
        ["create", "--user", "alice", "--tier", "pro", "--monthly-budget-usd", "-1"],
        ["create", "--user", "alice", "--tier", "pro", "--monthly-budget-usd", "NaN"],
        ["create", "--user", "alice", "--tier", "pro", "--allowed-models", " , "],
        ["revoke"],
        ["list"],
    ],
    ids=["tier", "no-user", "rpm", "tpm", "budget", "nan", "models", "no-id", "list-no-user"],
)
def test_usage_errors_exit_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["keys", *argv])
    assert caught.value.code == 2
    assert "error" in capsys.readouterr().err


def test_invalid_user_exits_2_and_creates_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "create", "--user", "team {a}", "--tier", "pro")
    assert (code, out) == (2, "")
    assert "user" in err
    assert run(capsys, "list", "--user", "team {a}", "--json")[1].strip() == "[]"


def test_unusable_store_exits_3(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.write_text("not a folder")
    code, out, err = run(capsys, "create", "--user", "alice", "--tier", "pro")
    assert (code, out) == (3, "")
    assert "embedded store failed during open" in err
