"""The contract every provider adapter fulfils, and the helpers they share.

An adapter turns Baton's unified request (OpenAI's wire format) into one provider's
SDK call and turns the answer back: a complete :class:`ChatCompletion` or a stream of
OpenAI-shaped :class:`ChatCompletionChunk` objects, plus normalised
:class:`~baton.usage.TokenUsage`. It owns no policy: no retries (the SDK's own are off;
Baton's retry step owns them), no caching, no accounting.

SDK exceptions are translated once, here at the boundary, into Baton's hierarchy with
:func:`error_from_status`, so the retry and fallback steps see one vocabulary whatever
the provider.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from baton.catalog import ModelInfo
from baton.errors import (
    BatonError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from baton.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    FinishReason,
    ResponseMessage,
)
from baton.usage import TokenUsage

# Fields every adapter handles (or that never reach a provider).
COMMON_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "baton", "user", "metadata", "store"}
)


@dataclass(frozen=True)
class ProviderCall:
    """One upstream call: the validated request, the resolved model and its time budget."""

    request: ChatCompletionRequest
    model: ModelInfo
    timeout_s: float
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class ProviderResult:
    """A complete answer with its normalised usage."""

    completion: ChatCompletion
    tokens: TokenUsage


# A stream yields OpenAI-shaped chunks and, last, the normalised usage when the provider
# reported it. The final TokenUsage lets accounting keep cache-write tokens, which
# OpenAI's usage chunk has no field for.
StreamItem = ChatCompletionChunk | TokenUsage


class Provider(Protocol):
    """What the orchestrator calls. One instance per provider per container."""

    name: str
    # Request fields (beyond COMMON_FIELDS) this provider honours; others are dropped
    # (and named in x-baton-dropped-params) or rejected, by configuration.
    supported_fields: frozenset[str]

    async def complete(self, call: ProviderCall) -> ProviderResult:
        """Send the request and wait for the whole answer."""
        ...

    def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        """Send the request with streaming on; yield chunks as they arrive."""
        ...

    async def aclose(self) -> None:
        """Close network clients (after a SnapStart restore they are rebuilt)."""
        ...


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now_seconds() -> int:
    return int(time.time())


def error_from_status(
    provider: str,
    status: int | None,
    message: str,
    *,
    retry_after: float | None = None,
    context_length: bool = False,
) -> BatonError:
    """Translate an upstream HTTP failure into Baton's hierarchy.

    The caller's own mistakes that the provider caught (400, 422) stay 400s; a provider
    refusing *Baton's* credentials (401/403) is an upstream fault (502), not the
    caller's; 404 from a provider means the model id is unknown upstream.
    """
    text = f"{provider}: {message}"
    if status is None:
        return UpstreamUnavailableError(text, provider=provider)
    if status in (400, 422):
        if context_length:
            return InvalidRequestError(text, param="messages", code="context_length_exceeded")
        return InvalidRequestError(text, code="upstream_rejected_request")
    if status in (401, 403):
        return UpstreamError(
            f"{provider} rejected Baton's provider credentials",
            provider=provider,
            upstream_status=status,
            code="upstream_auth_error",
        )
    if status == 404:
        return NotFoundError(text, param="model", code="upstream_model_not_found")
    if status == 413:
        return PayloadTooLargeError(text, code="upstream_request_too_large")
    if status in (408, 504):
        return UpstreamTimeoutError(text, provider=provider, upstream_status=status)
    if status in (429, 503, 529):
        return UpstreamUnavailableError(
            text, provider=provider, upstream_status=status, retry_after=retry_after
        )
    return UpstreamError(text, provider=provider, upstream_status=status, retry_after=retry_after)


def is_context_length_message(message: str) -> bool:
    """Whether an upstream 400 says the prompt is too long for the model."""
    lowered = message.lower()
    return any(
        marker in lowered
        for marker in (
            "context length",
            "context_length",
            "too long",
            "maximum context",
            "too many tokens",
            "exceeds the maximum number of tokens",  # Gemini
        )
    )


# --- one-choice answers -------------------------------------------------------------------
# Anthropic and Gemini return one candidate per request, so their adapters build the
# same OpenAI envelope around it: Baton's own id and time, the catalog id as ``model``.


def single_choice_result(
    model_id: str,
    message: ResponseMessage,
    finish_reason: FinishReason,
    tokens: TokenUsage,
    completion_id: str | None = None,
) -> ProviderResult:
    """A complete one-choice answer with its usage; ``completion_id`` when the caller
    needed the id before the answer was built (e.g. to derive tool-call ids from it)."""
    completion = ChatCompletion(
        id=completion_id or new_completion_id(),
        created=now_seconds(),
        model=model_id,
        choices=[Choice(index=0, message=message, finish_reason=finish_reason)],
        usage=tokens.to_openai(),
    )
    return ProviderResult(completion=completion, tokens=tokens)


@dataclass(frozen=True)
class StreamFrame:
    """What every chunk of one streamed one-choice answer repeats: one id, one
    creation time and the catalog model id, as OpenAI repeats them."""

    model: str
    id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=now_seconds)

    def chunk(
        self, delta: ChoiceDelta, finish_reason: FinishReason | None = None
    ) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)],
        )
