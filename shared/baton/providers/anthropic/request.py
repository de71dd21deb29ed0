"""The request's fields as the keyword arguments of ``messages.create``.

- ``max_tokens`` is required upstream, so a request without a cap gets
  ``min(model.max_output_tokens, DEFAULT_MAX_TOKENS)`` (plus room for thinking);
- ``reasoning_effort`` becomes thinking: a per-effort ``budget_tokens`` on the models
  whose only thinking mode is a manual budget (:data:`BUDGET_THINKING_MODELS`), adaptive
  thinking with ``output_config.effort`` on every other model (Claude 4.6 deprecates the
  budget, later models reject it);
- ``tool_choice`` and ``parallel_tool_calls`` share one Anthropic object, and a forced
  tool call goes without thinking (the API rejects the two together);
- ``response_format`` with a JSON schema becomes structured output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from baton.errors import InvalidRequestError, UnsupportedParameterError
from baton.providers.anthropic.messages import convert_messages
from baton.providers.base import ProviderCall
from baton.schema import (
    ChatCompletionRequest,
    NamedToolChoice,
    ReasoningEffort,
    ResponseFormat,
    Tool,
    ToolChoice,
)

# Anthropic requires max_tokens; a caller who sets no cap gets this much answer.
DEFAULT_MAX_TOKENS: Final = 4096
MIN_THINKING_BUDGET: Final = 1024  # the API's floor for budget_tokens

# Tokens of thinking per effort level: the budget in manual mode, and in both modes the
# headroom added to the default max_tokens so thinking does not eat the answer.
THINKING_BUDGETS: Final[Mapping[str, int]] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}
# OpenAI effort -> Anthropic ``output_config.effort`` (adaptive thinking); Anthropic
# has no "minimal".
ADAPTIVE_EFFORTS: Final[Mapping[str, str]] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
}

TOOL_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "required": "any", "none": "none"}
FORCED_TOOL_CHOICES: Final = frozenset({"any", "tool"})


# Name prefixes (dated ids share them) of the models whose only thinking mode is a
# manual budget. The catalog does not record the thinking mode, so it is kept here;
# any other model gets adaptive thinking.
BUDGET_THINKING_MODELS: Final = (
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-opus-4-1",
)


def build_request(call: ProviderCall) -> dict[str, Any]:
    """The keyword arguments for ``messages.create``: a JSON-shaped dict, as on the wire."""
    request, model = call.request, call.model
    max_tokens = _max_tokens(request, model.max_output_tokens)
    system, turns = convert_messages(request.messages)
    choice = _tool_choice(request.tool_choice, request.parallel_tool_calls)
    # Thinking cannot be combined with a forced tool call; the caller's choice wins.
    forced = choice is not None and choice["type"] in FORCED_TOOL_CHOICES
    effort_level = None if forced else request.reasoning_effort
    budget_mode = model.name.startswith(BUDGET_THINKING_MODELS)
    thinking, effort = _thinking(effort_level, budget_mode, max_tokens)

    params: dict[str, Any] = {"model": model.name, "max_tokens": max_tokens, "messages": turns}
    if system:
        params["system"] = system
    if request.stop_sequences:
        params["stop_sequences"] = request.stop_sequences
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
        if choice is not None:
            params["tool_choice"] = choice
    if thinking is not None:
        params["thinking"] = thinking
    output_config = _output_config(effort, request.response_format)
    if output_config:
        params["output_config"] = output_config
    user_id = request.safety_identifier or request.user
    if user_id:
        params["metadata"] = {"user_id": user_id}
    return params


def _max_tokens(request: ChatCompletionRequest, model_limit: int) -> int:
    """The caller's cap (clamped to the model's), else the default plus thinking room."""
    if request.output_token_limit is not None:
        return min(request.output_token_limit, model_limit)
    effort = request.reasoning_effort
    headroom = THINKING_BUDGETS.get(effort, 0) if effort else 0
    return min(model_limit, DEFAULT_MAX_TOKENS + headroom)


def _thinking(
    effort: ReasoningEffort | None, budget_mode: bool, max_tokens: int
) -> tuple[dict[str, Any] | None, str | None]:
    """The ``thinking`` object and the ``output_config.effort`` for an effort level.

    A manual budget must stay below max_tokens and above the API's floor; when the cap
    leaves no room for that, the request goes without thinking rather than failing.
    """
    if effort is None or effort == "none":
        return None, None
    if not budget_mode:
        return {"type": "adaptive"}, ADAPTIVE_EFFORTS[effort]
    budget = min(THINKING_BUDGETS[effort], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None, None
    return {"type": "enabled", "budget_tokens": budget}, None


def _output_config(effort: str | None, response_format: ResponseFormat | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if effort is not None:
        config["effort"] = effort
    output_format = _output_format(response_format)
    if output_format is not None:
        config["format"] = output_format
    return config


def _output_format(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """Structured outputs take a schema; Anthropic has no schema-less JSON mode."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        raise UnsupportedParameterError(
            "Anthropic models have no schema-less JSON mode; use response_format "
            "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}.",
            param="response_format",
        )
    schema = (response_format.json_schema or {}).get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "response_format.json_schema.schema must be a JSON schema object.",
            param="response_format",
        )
    return {"type": "json_schema", "schema": schema}


def _tool(tool: Tool) -> dict[str, Any]:
    function = tool.function
    spec: dict[str, Any] = {
        "name": function.name,
        "input_schema": function.parameters or {"type": "object", "properties": {}},
    }
    if function.description:
        spec["description"] = function.description
    if function.strict:
        spec["strict"] = True
    return spec


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    """OpenAI's tool_choice and parallel_tool_calls, which Anthropic keeps in one object."""
    if isinstance(choice, NamedToolChoice):
        name = choice.function.get("name")
        if not name:
            raise InvalidRequestError("tool_choice.function.name is required.", param="tool_choice")
        result: dict[str, Any] = {"type": "tool", "name": name}
    elif choice is not None:
        result = {"type": TOOL_CHOICES[choice]}
    elif parallel is False:
        result = {"type": "auto"}
    else:
        return None
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result
