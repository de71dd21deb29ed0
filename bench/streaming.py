"""Streaming latency: time to the first chunk and to the end of the stream, through
Baton and straight to the upstream, side by side in one run.

The upstream is the OpenAI wire fake from ``tests/fakes/openai_fake.py`` (a real HTTP
server on loopback, in a thread of this process) answering every request with the same
stream: ``CHUNKS`` content chunks, ``CHUNK_DELAY_S`` apart. Baton is a real ``baton
serve`` process whose OpenAI provider points at that fake. The same HTTP client sends
``REQUESTS`` streamed requests each way, sequentially and alternating (direct, Baton,
direct ...) so drift on the machine hits both paths alike, after ``WARMUP`` unmeasured
rounds (Baton imports the OpenAI SDK on its first request). Redis is ``REDIS_URL`` when
set, else the embedded one ``baton serve`` starts, as with ``make run``.

Time to first chunk is measured to the first ``data:`` event (a keep-alive comment
would not count), total time to ``data: [DONE]``. Every stream is checked to be whole;
a broken one fails the run rather than yield a number.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_fake import Answer, OpenAIFake  # noqa: E402
from tests.fakes.server import Fault  # noqa: E402
from tests.plugins.local_server import start_server  # noqa: E402

REQUESTS = 30
WARMUP = 3
CHUNKS = 20
CHUNK_DELAY_S = 0.010
TIMEOUT_S = 10.0  # one stream; the whole run is bounded by REQUESTS and this
UPSTREAM_MODEL = "gpt-4.1"  # Baton serves it as openai/gpt-4.1
BENCH_KEY = "bt_bench_streaming_key_0123456789"
ANSWER = " ".join(f"word{n}" for n in range(CHUNKS))


@dataclass(frozen=True)
class Sample:
    first_chunk_ms: float
    total_ms: float


@dataclass(frozen=True)
class Target:
    """One way to reach the upstream: its chat completions URL, key and model name."""

    name: str
    url: str
    key: str
    model: str


def stream_once(client: httpx.Client, target: Target, fake: OpenAIFake) -> Sample:
    """One streamed request, timed from sending to the first chunk and to [DONE]."""
    fake.script(Answer(text=ANSWER))
    fake.inject(Fault(chunk_delay_s=CHUNK_DELAY_S))
    body = {
        "model": target.model,
        "messages": [{"role": "user", "content": "Stream me twenty words."}],
        "stream": True,
        # Baton asks its upstream for usage on every stream, so ask the same of the
        # direct path: both upstream streams are then the same, event for event.
        "stream_options": {"include_usage": True},
    }
    headers = {"authorization": f"Bearer {target.key}"}
    started = time.perf_counter()
    first: float | None = None
    content: list[str] = []
    done = False
    with client.stream("POST", target.url, json=body, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{target.name}: HTTP {response.status_code}: {response.read()!r}")
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            first = first if first is not None else time.perf_counter()
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                break
            for choice in json.loads(data)["choices"]:
                content.append(choice["delta"].get("content") or "")
    ended = time.perf_counter()
    if first is None or not done or "".join(content).split() != ANSWER.split():
        raise RuntimeError(f"{target.name}: the stream was not whole")
    return Sample((first - started) * 1000, (ended - started) * 1000)


@contextmanager
def running_baton(fake: OpenAIFake) -> Iterator[str]:
    """A ``baton serve`` whose OpenAI provider is the fake; yields its base URL."""
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "BATON_DEV_API_KEY": BENCH_KEY,
            "BATON_DEV_USER": "bench-streaming",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": fake.base_url,
        }
        process, url = start_server(Path(data_dir), env)
        try:
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def _percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return {"p50": round(statistics.median(values), 1), "p95": round(cuts[18], 1)}


def run() -> dict[str, object]:
    fake = OpenAIFake()
    fake.start()
    try:
        with running_baton(fake) as baton_url, httpx.Client(timeout=TIMEOUT_S) as client:
            targets = [
                Target("direct", f"{fake.base_url}/chat/completions", "sk-bench", UPSTREAM_MODEL),
                Target(
                    "baton",
                    f"{baton_url}/v1/chat/completions",
                    BENCH_KEY,
                    f"openai/{UPSTREAM_MODEL}",
                ),
            ]
            samples: dict[str, list[Sample]] = {target.name: [] for target in targets}
            for round_ in range(WARMUP + REQUESTS):
                for target in targets:
                    sample = stream_once(client, target, fake)
                    if round_ >= WARMUP:
                        samples[target.name].append(sample)
    finally:
        fake.stop()
    paths = {
        name: {
            "first_chunk_ms": _percentiles([s.first_chunk_ms for s in rows]),
            "total_ms": _percentiles([s.total_ms for s in rows]),
        }
        for name, rows in samples.items()
    }
    return {
        "requests": REQUESTS,
        "chunks": CHUNKS,
        "chunk_delay_ms": CHUNK_DELAY_S * 1000,
        "redis": "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded",
        "paths": paths,
    }


def render(result: dict[str, object]) -> str:
    paths = result["paths"]
    assert isinstance(paths, dict)
    direct, baton = paths["direct"], paths["baton"]
    lines = [
        f"{result['requests']} sequential streamed requests each way, alternating, over "
        f"loopback; the upstream streams {result['chunks']} content chunks "
        f"{result['chunk_delay_ms']:g} ms apart. Redis: {result['redis']}.",
        "",
        "| path | first chunk p50 (ms) | first chunk p95 (ms) | total p50 (ms) | total p95 (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, row in (("direct to the upstream", direct), ("through Baton", baton)):
        first, total = row["first_chunk_ms"], row["total_ms"]
        lines.append(
            f"| {label} | {first['p50']} | {first['p95']} | {total['p50']} | {total['p95']} |"
        )
    cells = []
    for metric in ("first_chunk_ms", "total_ms"):
        for cut in ("p50", "p95"):
            added = baton[metric][cut] - direct[metric][cut]
            ratio = baton[metric][cut] / direct[metric][cut] if direct[metric][cut] else 0.0
            cells.append(f"{added:+.1f} (x{ratio:.2f})")
    lines.append(f"| Baton adds (ratio) | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome, indent=2))
    print(render(outcome))
