"""The simulated provider: deterministic answers with no network, for local runs,
tests and benchmarks.

Every answer says it is simulated, is derived from the last user message (so equal
requests get equal answers, which caching and deduplication rely on), counts tokens
like a real model would, and can be slowed or made to fail by setting
(``BATON_SIMULATED_LATENCY_MS``, ``BATON_SIMULATED_FAILURE_RATE``) or per request
with a marker in the prompt: ``[simulate:503]`` fails with that status,
``[simulate:slow=250]`` adds 250 ms.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import AsyncIterator

from baton.clock import Clock
from baton.errors import BatonError
from baton.providers.base import (
    ProviderCall,
    ProviderResult,
    StreamFrame,
    StreamItem,
    error_from_status,
    single_choice_result,
)
from baton.schema import (
    ChoiceDelta,
    FinishReason,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    UserMessage,
    message_text,
)
from baton.tokens import estimate_prompt_tokens, estimate_text_tokens
from baton.usage import TokenUsage

_MARKER = re.compile(r"\[simulate:(?:(\d{3})|slow=(\d+))\]")
_PREFIX = "[simulated] "


class SimulatedProvider:
    """Answers every ``simulated/*`` model, and unconfigured providers locally."""

    name = "simulated"
    supported_fields = frozenset(
        {
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "stop",
            "seed",
            "n",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "reasoning_effort",
        }
    )

    def __init__(self, clock: Clock, latency_ms: float = 0.0, failure_rate: float = 0.0) -> None:
        self._clock = clock
        self._latency_s = latency_ms / 1000
        self._failure_rate = failure_rate
        self._random = random.Random()  # noqa: S311 - failure injection, not security

    async def complete(self, call: ProviderCall) -> ProviderResult:
        prompt = _last_user_text(call)
        await self._misbehave(prompt, call)
        message, finish, text = self._answer(call, prompt)
        tokens = TokenUsage(
            input_tokens=estimate_prompt_tokens(call.request),
            output_tokens=estimate_text_tokens(text),
        )
        return single_choice_result(call.model.id, message, finish, tokens)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        result = await self.complete(call)
        completion = result.completion
        message = completion.choices[0].message
        frame = StreamFrame(completion.model, completion.id, completion.created)
        chunk = frame.chunk

        yield chunk(ChoiceDelta(role="assistant", content=""))
        for piece in re.findall(r"\S+\s*", message.content or ""):
            yield chunk(ChoiceDelta(content=piece))
        for index, tool_call in enumerate(message.tool_calls or []):
            yield chunk(
                ChoiceDelta(
                    tool_calls=[
                        ToolCallDelta(
                            index=index,
                            id=tool_call.id,
                            type="function",
                            function={
                                "name": tool_call.function.name,
                                "arguments": tool_call.function.arguments,
                            },
                        )
                    ]
                )
            )
        yield chunk(ChoiceDelta(), completion.choices[0].finish_reason)
        yield result.tokens

    async def aclose(self) -> None:
        return None

    async def _misbehave(self, prompt: str, call: ProviderCall) -> None:
        delay = self._latency_s
        status: int | None = None
        for code, slow in _MARKER.findall(prompt):
            if code:
                status = int(code)
            if slow:
                delay += int(slow) / 1000
        if delay:
            if delay > call.timeout_s:
                await self._clock.sleep(call.timeout_s)
                raise error_from_status(self.name, 504, "simulated timeout")
            await self._clock.sleep(delay)
        if status is None and self._failure_rate and self._random.random() < self._failure_rate:
            status = 503
        if status is not None:
            error: BatonError = error_from_status(
                self.name, status, f"simulated failure {status}", retry_after=1.0
            )
            raise error

    @staticmethod
    def _answer(call: ProviderCall, prompt: str) -> tuple[ResponseMessage, FinishReason, str]:
        request = call.request
        choice = request.tool_choice
        if request.tools and choice is not None and choice not in ("auto", "none"):
            name = (
                request.tools[0].function.name
                if isinstance(choice, str)
                else choice.function.get("name", request.tools[0].function.name)
            )
            arguments = json.dumps({"simulated": True, "prompt_chars": len(prompt)})
            tool_call = ToolCall(
                id="call_sim_" + hashlib.sha256(f"{name}\0{prompt}".encode()).hexdigest()[:16],
                function=FunctionCall(name=name, arguments=arguments),
            )
            return ResponseMessage(content=None, tool_calls=[tool_call]), "tool_calls", arguments

        if request.response_format is not None and request.response_format.type != "text":
            text = json.dumps({"simulated": True, "echo": prompt})
        else:
            text = f"{_PREFIX}{call.model.id} received: {prompt}"
        finish: FinishReason = "stop"
        limit = request.output_token_limit
        for stop in request.stop_sequences:
            if stop and stop in text:
                text = text[: text.index(stop)]
        if limit is not None and estimate_text_tokens(text) > limit:
            text = text[: limit * 4]
            finish = "length"
        return ResponseMessage(content=text), finish, text


def _last_user_text(call: ProviderCall) -> str:
    for message in reversed(call.request.messages):
        if isinstance(message, UserMessage):
            return message_text(message.content)
    return ""
