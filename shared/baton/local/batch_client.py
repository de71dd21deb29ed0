"""``baton batch FILE.jsonl --url URL``: send a file of chat requests through
``POST /v2/chat/batch`` and write one result line per request, in input order.

Each non-blank line of FILE is one chat request (the ``/v2/chat`` body). Lines are sent
in batches of ``--batch-size`` with ``--concurrency`` batch calls in flight; each result
line is ``{"line": n, "status": s, "response": {...}}`` or ``{"line": n, "status": s,
"error": {"error": {...}}}`` (OpenAI's error body), ``n`` being the line's number in
FILE. Nothing is silently lost:

- a line that is not a JSON object gets a 400 error line and is never sent;
- a batch call that fails as a whole (network error, 401, 413, 5xx, an answer that is not
  a batch) gives every request of that batch an error line: the call's status and the
  gateway's error body, or status ``null`` when no HTTP answer came.

Exit status: 0 when every batch call was answered 200 (even if some items failed), 1
when any batch call failed, 2 for a usage error (no key, unreadable file). The summary
``N succeeded, M failed`` goes to stderr beside the progress bar; stdout stays empty.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import ValidationError

from baton.ai.batch import BatchItemResult, BatchResponse
from baton.errors import InvalidRequestError

BATCH_PATH = "/v2/chat/batch"
# The server's default BATON_BATCH_MAX_ITEMS: a full batch by default, never too many.
DEFAULT_BATCH_SIZE = 50
DEFAULT_CONCURRENCY = 2
# A batch call lasts as long as its slowest item, up to the gateway's request deadline
# (BATON_REQUEST_TIMEOUT_S, 120 s by default); waiting longer only hides a lost answer.
DEFAULT_TIMEOUT_S = 180.0
CONNECT_TIMEOUT_S = 10.0
API_KEY_VARIABLE = "BATON_API_KEY"

EXIT_OK = 0
EXIT_BATCH_FAILED = 1
EXIT_USAGE = 2

Result = dict[str, Any]


@dataclass(frozen=True)
class Item:
    """One request to send, with the number of the line it came from."""

    line: int
    request: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What a file holds: the requests to send, and lines answered without sending."""

    lines: list[int]  # every request's line number, in file order
    items: list[Item]
    rejected: list[Result]


def plan(text: str) -> Plan:
    """Parse the file; a line that is not a JSON object is answered here with a 400."""
    lines: list[int] = []
    items: list[Item] = []
    rejected: list[Result] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        lines.append(number)
        try:
            request = json.loads(raw, parse_constant=_reject_constant)
        except ValueError as exc:
            rejected.append(_local_error(number, f"Line {number} is not valid JSON: {exc}."))
            continue
        if not isinstance(request, dict):
            rejected.append(_local_error(number, f"Line {number} is not a JSON object."))
            continue
        items.append(Item(number, request))
    return Plan(lines=lines, items=items, rejected=rejected)


def _reject_constant(name: str) -> None:
    """NaN and Infinity are not JSON: sent on, they would fail the whole batch call."""
    raise ValueError(f"{name} is not a JSON value")


def chunks(items: list[Item], size: int) -> list[list[Item]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _local_error(line: int, message: str) -> Result:
    error = InvalidRequestError(message, code="invalid_json")
    return {"line": line, "status": error.status, "error": error.body()}


def _error_body(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _call_error(response: httpx.Response) -> dict[str, Any]:
    """The gateway's own error body when it sent one, else one describing the answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body
    return _error_body(
        f"The batch call answered HTTP {response.status_code} without an error body.",
        "server_error" if response.status_code >= 500 else "invalid_request_error",
        None,
    )


def _all_failed(batch: list[Item], status: int | None, error: dict[str, Any]) -> list[Result]:
    return [{"line": item.line, "status": status, "error": error} for item in batch]


async def send_batch(
    client: httpx.AsyncClient, url: str, batch: list[Item]
) -> tuple[list[Result], bool]:
    """One batch call: its result lines, and whether the call itself succeeded."""
    try:
        response = await client.post(url, json={"requests": [item.request for item in batch]})
    except httpx.HTTPError as exc:
        message = f"No answer from {url}: {type(exc).__name__}: {exc}"
        return _all_failed(batch, None, _error_body(message, "connection_error", None)), False
    if response.status_code != 200:
        return _all_failed(batch, response.status_code, _call_error(response)), False
    try:
        answer = BatchResponse.model_validate_json(response.content)
    except ValidationError:
        answer = None
    by_index = {result.index: result for result in answer.results} if answer else {}
    if set(by_index) != set(range(len(batch))):
        message = f"{url} answered 200 but not with one result per request of the batch."
        error = _error_body(message, "server_error", "invalid_batch_response")
        return _all_failed(batch, response.status_code, error), False
    return [_item_result(item, by_index[index]) for index, item in enumerate(batch)], True


def _item_result(item: Item, result: BatchItemResult) -> Result:
    line: Result = {"line": item.line, "status": result.status}
    if result.response is not None:
        line["response"] = result.response
    else:
        line["error"] = result.error
    return line


class OrderedWriter:
    """Writes result lines in file order as they arrive, whatever order batches end in,
    so a run cut short still leaves every finished line before the gap on disk."""

    def __init__(self, lines: Iterable[int], sink: IO[str]) -> None:
        self._order: Iterator[int] = iter(lines)
        self._next = next(self._order, None)
        self._waiting: dict[int, Result] = {}
        self._sink = sink
        self.succeeded = 0
        self.failed = 0

    def add(self, results: Iterable[Result]) -> None:
        for result in results:
            self._waiting[result["line"]] = result
        while self._next is not None and self._next in self._waiting:
            result = self._waiting.pop(self._next)
            self._sink.write(json.dumps(result) + "\n")
            if result["status"] == 200:
                self.succeeded += 1
            else:
                self.failed += 1
            self._next = next(self._order, None)
        self._sink.flush()


async def send_all(
    batches: list[list[Item]],
    url: str,
    key: str,
    concurrency: int,
    timeout_s: float,
    on_results: Callable[[list[Result]], None],
) -> int:
    """Send every batch, ``concurrency`` calls at a time; returns how many calls failed."""
    failed_calls = 0
    queue = iter(batches)  # shared by the workers: each takes the next unsent batch
    headers = {"authorization": f"Bearer {key}"}
    timeout = httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as client:

        async def worker() -> None:
            nonlocal failed_calls
            for batch in queue:
                results, answered = await send_batch(client, url, batch)
                failed_calls += not answered
                on_results(results)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(batches)))))
    return failed_calls


def default_output(path: Path) -> Path:
    """``requests.jsonl`` -> ``requests.results.jsonl``."""
    return path.with_suffix(".results.jsonl")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # the `local` extra: never needed on Lambda

    key = args.key or os.environ.get(API_KEY_VARIABLE)
    if not key:
        print(f"baton batch: pass --key or set {API_KEY_VARIABLE}", file=sys.stderr)
        return EXIT_USAGE
    try:
        work = plan(args.file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"baton batch: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    output: Path = args.output or default_output(args.file)
    url = args.url.rstrip("/") + BATCH_PATH
    batches = chunks(work.items, args.batch_size)
    with (
        output.open("w", encoding="utf-8") as sink,
        tqdm(total=len(work.lines), unit="req", file=sys.stderr) as bar,
    ):
        writer = OrderedWriter(work.lines, sink)

        def on_results(results: list[Result]) -> None:
            writer.add(results)
            bar.update(len(results))

        on_results(work.rejected)
        failed_calls = asyncio.run(
            send_all(batches, url, key, args.concurrency, args.timeout, on_results)
        )
    print(f"{writer.succeeded} succeeded, {writer.failed} failed", file=sys.stderr)
    if failed_calls:
        print(
            f"{failed_calls} of {len(batches)} batch calls failed; "
            "their requests carry the call's error",
            file=sys.stderr,
        )
    print(f"results: {output}", file=sys.stderr)
    return EXIT_BATCH_FAILED if failed_calls else EXIT_OK


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``batch`` to the ``baton`` parser."""
    parser = subparsers.add_parser(
        "batch",
        help="send a JSONL file of chat requests through POST /v2/chat/batch",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("file", type=Path, help="JSONL file, one chat request per line")
    parser.add_argument("--url", required=True, help="Baton's base URL, e.g. http://127.0.0.1:3000")
    parser.add_argument("--key", help=f"API key (default: ${API_KEY_VARIABLE})")
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"requests per batch call (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"batch calls in flight (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="results file (default: FILE.results.jsonl)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for one batch call (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.set_defaults(func=run)
