"""End to end: ``baton batch`` as a user runs it (its own process) against a real
``baton serve`` that accepts at most two requests per batch call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.local_server import LocalServer, free_port, start_server
from tests.spec import assert_valid

MAX_ITEMS = 2


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("baton-batch")
    key = f"bt_batch_{uuid.uuid4().hex}"
    env = {
        "REDIS_URL": redis_url,
        "BATON_DEV_API_KEY": key,
        "BATON_DEV_USER": f"batch-{uuid.uuid4().hex[:12]}",
        "BATON_BATCH_MAX_ITEMS": str(MAX_ITEMS),
    }
    process, url = start_server(data_dir, env)
    try:
        yield LocalServer(url=url, key=key, data_dir=data_dir)
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]]


def request(text: str) -> str:
    tagged = f"{text} #{uuid.uuid4().hex[:8]}"  # unique: never a cache hit from another run
    return json.dumps(
        {"model": "simulated/echo", "messages": [{"role": "user", "content": tagged}]}
    )


GOOD_AND_BAD = [
    request("first"),
    request("second"),
    '{"model": "simulated/echo", "messages": [',  # broken JSON: answered without sending
    request("[simulate:503] upstream down"),
    request("fifth"),
    request("sixth"),
]


def baton_batch(tmp_path: Path, lines: list[str], *args: str, key: str | None = None) -> Run:
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(lines) + "\n")
    env = {name: value for name, value in os.environ.items() if name != "BATON_API_KEY"}
    if key is not None:
        env["BATON_API_KEY"] = key
    done = subprocess.run(
        [sys.executable, "-m", "baton.cli", "batch", str(source), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = tmp_path / "requests.results.jsonl"
    results = (
        [json.loads(line) for line in output.read_text().splitlines()] if output.exists() else []
    )
    return Run(done.returncode, done.stdout, done.stderr, results)


def summary(run: Run) -> str:
    """The ``N succeeded, M failed`` line (the progress bar shares stderr)."""
    lines = [line for line in run.stderr.splitlines() if line.endswith(" failed")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_every_line_gets_its_result_in_order(batch_server: LocalServer, tmp_path: Path) -> None:
    run = baton_batch(
        tmp_path,
        GOOD_AND_BAD,
        "--url",
        batch_server.url,
        "--batch-size",
        "2",
        key=batch_server.key,
    )
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    assert [r["line"] for r in run.results] == [1, 2, 3, 4, 5, 6]
    assert [r["status"] for r in run.results] == [200, 200, 400, 503, 200, 200]
    for number, result in enumerate(run.results, start=1):
        if result["status"] == 200:
            completion = {k: v for k, v in result["response"].items() if k != "baton"}
            assert_valid("CreateChatCompletionResponse", completion)
            prompt = json.loads(GOOD_AND_BAD[number - 1])["messages"][0]["content"]
            assert prompt in completion["choices"][0]["message"]["content"]
        else:
            assert "response" not in result
            assert_valid("ErrorResponse", result["error"])
    assert run.results[2]["error"]["error"]["code"] == "invalid_json"
    assert run.results[3]["error"]["error"]["type"] == "upstream_error"
    assert summary(run) == "4 succeeded, 2 failed"


def test_results_stay_in_file_order_when_later_calls_finish_first(
    batch_server: LocalServer, tmp_path: Path
) -> None:
    # Three one-request calls at once; the first is slow, so it is answered last.
    lines = [request("[simulate:slow=800] slow"), request("fast"), request("faster")]
    run = baton_batch(
        tmp_path,
        lines,
        "--url",
        batch_server.url,
        "--batch-size",
        "1",
        "--concurrency",
        "3",
        key=batch_server.key,
    )
    assert run.exit_code == 0, run.stderr
    assert [r["line"] for r in run.results] == [1, 2, 3]
    contents = [r["response"]["choices"][0]["message"]["content"] for r in run.results]
    prompts = [json.loads(line)["messages"][0]["content"] for line in lines]
    assert all(p in c for p, c in zip(prompts, contents, strict=True))
    assert summary(run) == "3 succeeded, 0 failed"


def test_a_rejected_batch_call_fails_every_request_it_carried(
    batch_server: LocalServer, tmp_path: Path
) -> None:
    # The five valid lines go as calls of 3 (lines 1, 2, 4) and 2 (lines 5, 6); the server
    # takes at most 2, so it refuses the first call whole and answers the second.
    run = baton_batch(
        tmp_path,
        GOOD_AND_BAD,
        "--url",
        batch_server.url,
        "--batch-size",
        "3",
        "--key",
        batch_server.key,
    )
    assert run.exit_code == 1
    assert [r["line"] for r in run.results] == [1, 2, 3, 4, 5, 6]
    assert [r["status"] for r in run.results] == [400, 400, 400, 400, 200, 200]
    codes = [r["error"]["error"]["code"] for r in run.results[:4]]
    assert codes == ["batch_too_large", "batch_too_large", "invalid_json", "batch_too_large"]
    assert summary(run) == "2 succeeded, 4 failed"
    assert "1 of 2 batch calls failed" in run.stderr


def test_a_wrong_key_fails_every_line_with_401(batch_server: LocalServer, tmp_path: Path) -> None:
    run = baton_batch(tmp_path, GOOD_AND_BAD[:2], "--url", batch_server.url, key="bt_wrong")
    assert run.exit_code == 1
    assert [r["status"] for r in run.results] == [401, 401]
    for result in run.results:
        assert_valid("ErrorResponse", result["error"])
    assert summary(run) == "0 succeeded, 2 failed"


def test_an_unreachable_gateway_gives_every_request_an_error_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = baton_batch(tmp_path, GOOD_AND_BAD, "--url", url, "--batch-size", "2", key="bt_any")
    assert run.exit_code == 1
    assert [r["line"] for r in run.results] == [1, 2, 3, 4, 5, 6]
    assert [r["status"] for r in run.results] == [None, None, 400, None, None, None]
    for result in run.results:
        assert_valid("ErrorResponse", result["error"])
        assert "response" not in result
    assert run.results[0]["error"]["error"]["type"] == "connection_error"
    assert summary(run) == "0 succeeded, 6 failed"


def test_no_key_is_a_usage_error(tmp_path: Path) -> None:
    run = baton_batch(tmp_path, GOOD_AND_BAD[:1], "--url", "http://127.0.0.1:9")
    assert run.exit_code == 2
    assert "BATON_API_KEY" in run.stderr
    assert run.results == []
