"""``baton invoke``: every sample event in ``events/`` through the real handlers, and the
command's own promises (template settings, ``--env-vars``, exit status).

Each invocation is a subprocess, as a user runs it: a fresh interpreter, so settings,
module caches and environment never leak between tests. The store is the embedded one in
a per-test folder, Redis is the shared test Redis, and each test's dev user is unique, so
parallel tests never share Redis keys. No provider key is set: ``simulated/echo`` answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# The placeholder key every sample event carries (docs/deploy.md says so).
SAMPLE_KEY = "bt_sample_key"
PROVIDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@dataclass(frozen=True)
class Invocation:
    exit_code: int
    response: Any
    stderr: str

    @property
    def status(self) -> int:
        return int(self.response["statusCode"])

    @property
    def body(self) -> Any:
        return json.loads(self.response["body"])


@pytest.fixture
def invoke(tmp_path: Path, redis_url: str) -> Any:
    """Run ``baton invoke`` with an isolated data folder and environment."""

    def run(*args: str, provision: bool = False, env: dict[str, str] | None = None) -> Invocation:
        full_env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "BATON_DATA_DIR": str(tmp_path / "data"),
            "BATON_DEV_USER": f"invoke-{uuid.uuid4().hex}",
            **(env or {}),
        }
        for name in (*PROVIDER_VARIABLES, "BATON_DEV_API_KEY", "BATON_CONFIG_FILE"):
            full_env.pop(name, None)
        if provision:
            full_env["BATON_DEV_API_KEY"] = SAMPLE_KEY
        result = subprocess.run(
            [sys.executable, "-m", "baton.cli", "invoke", *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        try:
            response = json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"stdout is not one JSON document:\n{result.stdout}\n{result.stderr}")
        return Invocation(result.returncode, response, result.stderr)

    return run


def test_every_event_names_the_sample_key_or_none() -> None:
    """One obvious placeholder, so docs can say which key to provision."""
    events = sorted(EVENTS.glob("*.json"))
    assert {e.name for e in events} == {
        "aggregate_schedule.json",
        "chat_completions_function_url.json",
        "chat_http_api.json",
        "health.json",
        "route_suggest.json",
        "usage.json",
    }
    for path in events:
        headers = json.loads(path.read_text()).get("headers", {})
        assert headers.get("authorization", f"Bearer {SAMPLE_KEY}") == f"Bearer {SAMPLE_KEY}"


# --- the sample events through the real handlers -------------------------------------------


def test_health_answers_200_without_a_key(invoke: Any) -> None:
    result = invoke("health", "--event", "events/health.json")
    assert result.exit_code == 0, result.stderr
    assert result.status == 200
    assert result.body["status"] == "ok"


def test_chat_function_url_event_needs_a_provisioned_key(invoke: Any) -> None:
    result = invoke("chat", "--event", "events/chat_completions_function_url.json")
    assert result.exit_code == 0, result.stderr
    assert result.status == 401
    assert result.body["error"]["type"] == "authentication_error"


def test_chat_function_url_event_goes_through_the_asgi_app(invoke: Any) -> None:
    result = invoke("chat", "--event", "events/chat_completions_function_url.json", provision=True)
    assert result.exit_code == 0, result.stderr
    assert result.status == 200, result.body
    assert result.body["object"] == "chat.completion"
    assert result.body["model"] == "simulated/echo"
    assert "Say hello to Baton." in result.body["choices"][0]["message"]["content"]
    # The OpenAI endpoint's own answer, not the /v2 shape.
    assert "baton" not in result.body


def _lambda_web_adapter_request(tmp_path: Path, method: str, path: str) -> Path:
    """The sample Function URL event turned into a keyless request for ``path``, as
    Lambda Web Adapter itself sends for its readiness check and SnapStart hook."""
    event = json.loads((EVENTS / "chat_completions_function_url.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["body"] = None
    for header in ("authorization", "content-length", "content-type"):
        event["headers"].pop(header)
    file = tmp_path / f"{method.lower()}-{path.strip('/').replace('/', '-')}.json"
    file.write_text(json.dumps(event))
    return file


@pytest.mark.parametrize(
    ("variable", "method"),
    [
        # The adapter takes any answer below 500 as ready; Baton's path must really work.
        ("AWS_LWA_READINESS_CHECK_PATH", "GET"),
        # A non-2xx answer to the after-restore hook fails the SnapStart restore.
        ("AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH", "POST"),
    ],
)
def test_chat_app_answers_lambda_web_adapters_own_requests(
    invoke: Any, tmp_path: Path, variable: str, method: str
) -> None:
    """Both requests come from the adapter itself, without an API key."""
    template = (ROOT / "template.yaml").read_text()
    match = re.search(rf"^\s+{variable}: (\S+)$", template, re.M)
    assert match, f"{variable} is not set in template.yaml"
    event = _lambda_web_adapter_request(tmp_path, method, match[1])
    result = invoke("chat", "--event", str(event))
    assert result.exit_code == 0, result.stderr
    assert 200 <= result.status < 300, (match[1], result.response)


def test_chat_http_api_event_goes_to_the_buffered_v2_handler(invoke: Any) -> None:
    result = invoke("chat", "--event", "events/chat_http_api.json", provision=True)
    assert result.exit_code == 0, result.stderr
    assert result.status == 200, result.body
    assert result.body["baton"]["provider"] == "simulated"


def test_route_suggest_event_gets_a_recommendation(invoke: Any) -> None:
    result = invoke("route_suggest", "--event", "events/route_suggest.json", provision=True)
    assert result.exit_code == 0, result.stderr
    assert result.status == 200, result.body
    assert result.body["task_type"] in {"code", "analysis", "reasoning"}
    assert result.body["recommendations"]


def test_unfinished_usage_route_answers_501(invoke: Any) -> None:
    result = invoke("usage", "--event", "events/usage.json", provision=True)
    assert result.exit_code == 0, result.stderr
    assert result.status == 501
    assert result.body["error"]["code"] == "not_implemented"


def test_aggregate_schedule_event_reaches_the_aggregator(invoke: Any) -> None:
    result = invoke("aggregate", "--event", "events/aggregate_schedule.json")
    assert result.exit_code == 0, result.stderr
    assert result.response["status"] == 501


# --- the command itself, on a template of its own ---------------------------------------


PROBE_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 7
    Layers:
      - !Ref CoreLayer
Resources:
  ProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/probe/
      Handler: handler.main
      MemorySize: 384
  BoomFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/boom/
      Handler: app.handler
"""

PROBE_HANDLER = """\
import os
import re


def main(event, context):
    return {
        "event": event,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "lambda_name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "sam_local": os.environ["AWS_SAM_LOCAL"],
        "colour": os.environ.get("PROBE_COLOUR"),
        "shape": os.environ.get("PROBE_SHAPE"),
    }
"""


@pytest.fixture
def probe_project(tmp_path: Path) -> Path:
    """A template with a probe function that reports what it was given, and one that raises."""
    project = tmp_path / "project"
    (project / "functions" / "probe").mkdir(parents=True)
    (project / "functions" / "boom").mkdir(parents=True)
    (project / "template.yaml").write_text(PROBE_TEMPLATE)
    (project / "functions" / "probe" / "handler.py").write_text(PROBE_HANDLER)
    (project / "functions" / "boom" / "app.py").write_text(
        textwrap.dedent(
            """\
            def handler(event, context):
                raise ValueError("the probe exploded")
            """
        )
    )
    (project / "event.json").write_text(json.dumps({"hello": "world"}))
    return project


def test_settings_come_from_the_template_and_env_vars_file(
    invoke: Any, probe_project: Path
) -> None:
    env_vars = probe_project / "env.json"
    env_vars.write_text(
        json.dumps(
            {
                "Parameters": {"PROBE_COLOUR": "blue", "PROBE_SHAPE": "round"},
                "ProbeFunction": {"PROBE_COLOUR": "green"},
                "BoomFunction": {"PROBE_SHAPE": "never-applied"},
            }
        )
    )
    result = invoke(
        "probe",
        "--event",
        str(probe_project / "event.json"),
        "--template",
        str(probe_project / "template.yaml"),
        "--env-vars",
        str(env_vars),
    )
    assert result.exit_code == 0, result.stderr
    answer = result.response
    assert answer["event"] == {"hello": "world"}
    assert answer["function_name"] == answer["lambda_name"] == "ProbeFunction"
    assert answer["memory"] == 384
    assert answer["sam_local"] == "true"
    # Timeout 7 s from Globals, counting down (a generous bound: no timing asserted).
    assert 0 < answer["remaining_ms"] <= 7000
    # The function's own section wins over Parameters; other functions' sections do not apply.
    assert (answer["colour"], answer["shape"]) == ("green", "round")


def test_a_raising_handler_exits_1_with_lambdas_error_shape(
    invoke: Any, probe_project: Path
) -> None:
    result = invoke(
        "boom",
        "--event",
        str(probe_project / "event.json"),
        "--template",
        str(probe_project / "template.yaml"),
    )
    assert result.exit_code == 1
    assert result.response == {"errorType": "ValueError", "errorMessage": "the probe exploded"}
    assert "Traceback" in result.stderr


def test_an_unknown_function_exits_1(probe_project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "baton.cli", "invoke", "nope", "--event", "event.json"],
        cwd=probe_project,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 1
    assert "functions/nope" in result.stderr
    assert result.stdout == ""
