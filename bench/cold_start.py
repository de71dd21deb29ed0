"""Import-and-init time of each Lambda function, in fresh interpreters.

For each function, a new Python process loads ``functions/<name>/app.py`` the way the
Lambda runtime does (import the module, which builds the container's runtime) and
reports the time that took. Each case is measured with provider preloading off (lazy
SDK imports, the default without SnapStart) and on (what a SnapStart snapshot holds),
next to the time to import all three provider SDKs eagerly, in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ["chat", "health", "route_suggest", "usage", "aggregate"]
RUNS = 7

_LOAD_FUNCTION = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""

_IMPORT_SDKS = """
import time
started = time.perf_counter()
import openai, anthropic
from google import genai
print((time.perf_counter() - started) * 1000)
"""


def _median_ms(code: str, args: list[str], env: dict[str, str]) -> float:
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data_dir:
        base_env = {
            **os.environ,
            "BATON_DATA_DIR": data_dir,
            "BATON_STORE": "embedded",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            # Keys make the providers live, so preloading has something to load;
            # nothing is sent anywhere during init.
            "OPENAI_API_KEY": "sk-bench",
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "GEMINI_API_KEY": "bench",
            # Like Lambda's read-only layer: the project's modules are compiled at import
            # (make exports PYTHONDONTWRITEBYTECODE, so no cached bytecode helps them).
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        results: dict[str, dict[str, float]] = {}
        for name in FUNCTIONS:
            path = str(ROOT / "functions" / name / "app.py")
            lazy = _median_ms(
                _LOAD_FUNCTION, [path], {**base_env, "BATON_PRELOAD_PROVIDERS": "false"}
            )
            eager = _median_ms(
                _LOAD_FUNCTION, [path], {**base_env, "BATON_PRELOAD_PROVIDERS": "true"}
            )
            results[name] = {"lazy_ms": round(lazy, 1), "preloaded_ms": round(eager, 1)}
        sdks = _median_ms(_IMPORT_SDKS, [], base_env)
    return {"runs_per_case": RUNS, "functions": results, "import_all_sdks_ms": round(sdks, 1)}


def render(result: dict[str, object]) -> str:
    functions = result["functions"]
    sdks = result["import_all_sdks_ms"]
    assert isinstance(functions, dict) and isinstance(sdks, float)
    lines = [
        f"Median of {result['runs_per_case']} fresh interpreters each. "
        f"Importing openai + anthropic + google-genai eagerly: **{sdks} ms**.",
        "",
        "| function | init, lazy SDKs (ms) | init, preloaded (ms) | lazy / eager-SDK import |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, row in functions.items():
        ratio = row["lazy_ms"] / sdks if sdks else float("nan")
        lines.append(f"| {name} | {row['lazy_ms']} | {row['preloaded_ms']} | {ratio:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome, indent=2))
    print(render(outcome))
