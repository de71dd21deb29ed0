"""The request's options as Gemini's ``GenerateContentConfig``.

What differs between Gemini generations is one table (:data:`_FAMILIES`): how thinking
is controlled (a level on Gemini 3 and later, a token budget on 2.5 and earlier) and
whether replayed function calls need a thought signature. ``reasoning_effort`` maps to
either control through one table each; tools and ``tool_choice`` map to function
declarations and a function-calling mode. The SDK's client-side switches that could
send follow-up requests on their own are turned off here, per request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from google.genai import types

from baton.errors import InvalidRequestError
from baton.providers.base import ProviderCall
from baton.schema import ChatCompletionRequest, NamedToolChoice, ReasoningEffort

_TOOL_CHOICE_MODES: dict[str, types.FunctionCallingConfigMode] = {
    "none": types.FunctionCallingConfigMode.NONE,
    "auto": types.FunctionCallingConfigMode.AUTO,
    "required": types.FunctionCallingConfigMode.ANY,
}

# reasoning_effort -> thinking_level (Gemini 3 and later). Gemini 3 cannot switch
# thinking off, so "none" asks for the least the model allows.
_THINKING_LEVELS: dict[ReasoningEffort, types.ThinkingLevel] = {
    "none": types.ThinkingLevel.MINIMAL,
    "minimal": types.ThinkingLevel.MINIMAL,
    "low": types.ThinkingLevel.LOW,
    "medium": types.ThinkingLevel.MEDIUM,
    "high": types.ThinkingLevel.HIGH,
    "xhigh": types.ThinkingLevel.HIGH,
}
# reasoning_effort -> thinking_budget in tokens (Gemini 2.5), clamped to the model's range.
_THINKING_BUDGETS: dict[ReasoningEffort, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}


@dataclass(frozen=True)
class Family:
    """What differs between Gemini generations in the request we send."""

    thinking: Literal["level", "budget"]
    signs_replayed_calls: bool
    budget_range: tuple[int, int] = (0, 24576)
    lowest_level: types.ThinkingLevel = types.ThinkingLevel.MINIMAL


# First match wins; matched against the provider's model name (e.g. gemini-2.5-flash).
_FAMILIES: tuple[tuple[re.Pattern[str], Family], ...] = (
    (re.compile(r"^gemini-2\.5-pro"), Family("budget", False, budget_range=(128, 32768))),
    (re.compile(r"^gemini-[12]\."), Family("budget", False)),
    (re.compile(r"-pro\b"), Family("level", True, lowest_level=types.ThinkingLevel.LOW)),
    (re.compile(r""), Family("level", True)),
)


def family_of(model_name: str) -> Family:
    return next(family for pattern, family in _FAMILIES if pattern.search(model_name))


def _tools(request: ChatCompletionRequest) -> types.ToolListUnion | None:
    if not request.tools:
        return None
    declarations = [
        types.FunctionDeclaration(
            name=tool.function.name,
            description=tool.function.description,
            parameters_json_schema=tool.function.parameters,
        )
        for tool in request.tools
    ]
    return [types.Tool(function_declarations=declarations)]


def _tool_config(request: ChatCompletionRequest) -> types.ToolConfig | None:
    choice = request.tool_choice
    if choice is None or not request.tools:
        return None
    if isinstance(choice, NamedToolChoice):
        name = choice.function.get("name")
        if not name:
            raise InvalidRequestError("tool_choice.function.name is required.", param="tool_choice")
        calling = types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=[name]
        )
    else:
        calling = types.FunctionCallingConfig(mode=_TOOL_CHOICE_MODES[choice])
    return types.ToolConfig(function_calling_config=calling)


def thinking_config(model_name: str, effort: ReasoningEffort | None) -> types.ThinkingConfig | None:
    """reasoning_effort -> Gemini's thinking controls for this model's generation."""
    if effort is None:
        return None
    family = family_of(model_name)
    if family.thinking == "budget":
        low, high = family.budget_range
        budget = min(max(_THINKING_BUDGETS[effort], low), high)
        return types.ThinkingConfig(thinking_budget=budget, include_thoughts=False)
    level = _THINKING_LEVELS[effort]
    if level == types.ThinkingLevel.MINIMAL:
        level = family.lowest_level
    return types.ThinkingConfig(thinking_level=level, include_thoughts=False)


def _response_format(request: ChatCompletionRequest) -> dict[str, Any]:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return {}
    schema = (response_format.json_schema or {}).get("schema")
    return {"response_mime_type": "application/json", "response_json_schema": schema}


def build_config(call: ProviderCall, system: types.Content | None) -> types.GenerateContentConfig:
    """The request's options as Gemini's ``GenerateContentConfig``."""
    request = call.request
    limit = request.output_token_limit
    return types.GenerateContentConfig(
        system_instruction=system,
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=None if limit is None else min(limit, call.model.max_output_tokens),
        stop_sequences=request.stop_sequences or None,
        seed=request.seed,
        tools=_tools(request),
        tool_config=_tool_config(request),
        thinking_config=thinking_config(call.model.name, request.reasoning_effort),
        **_response_format(request),
        # One adapter call is one HTTP call: no SDK-driven follow-up requests.
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        automatic_continuation=False,
        http_options=types.HttpOptions(timeout=max(1, math.ceil(call.timeout_s * 1000))),
    )
