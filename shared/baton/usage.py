"""What a request consumed and cost: one type, produced by every provider adapter.

Providers count tokens differently (design decision 6), so each adapter normalises
once, into :class:`TokenUsage`, whose fields follow OpenAI's meaning:

- ``input_tokens`` is every prompt token, cached ones included. Anthropic reports
  ``input_tokens`` *without* cache reads and writes, so its adapter adds them back.
- ``output_tokens`` is every generated token, reasoning included. Gemini reports
  ``thoughts_token_count`` outside ``candidates_token_count``, so its adapter adds it.

Money is integer micro-dollars (1 USD = 1,000,000), never a float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from baton.schema import CompletionTokensDetails, CompletionUsage, PromptTokensDetails

MICRO_USD_PER_USD = 1_000_000


@dataclass(frozen=True)
class TokenUsage:
    """Normalised token counts of one provider call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def to_openai(self) -> CompletionUsage:
        """The same counts in OpenAI's ``usage`` shape."""
        return CompletionUsage(
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            total_tokens=self.input_tokens + self.output_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=self.cache_read_tokens),
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=self.reasoning_tokens
            ),
        )


@dataclass(frozen=True)
class UsageRecord:
    """One request's consumption, handed to the usage recorder when it ends.

    It holds no prompt or completion text: usage is safe to log and export.
    """

    request_id: str
    tenant: str
    key_id: str
    provider: str
    model: str
    tokens: TokenUsage
    cost_micro_usd: int
    latency_ms: float
    created_at: float
    status: str = "ok"  # ok | error | cancelled
    stream: bool = False
    cache: str = "miss"
    error_code: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
