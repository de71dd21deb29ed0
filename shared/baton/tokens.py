"""Offline token estimates, for providers that do not count (the simulated one) and
for decisions made before any provider is called (context-window checks, routing).

Real tokenizers differ per provider and cost milliseconds to load; a character-based
estimate (about four characters a token for English, fewer for code and CJK) is within
the accuracy these decisions need and costs microseconds.
"""

from __future__ import annotations

import math

from baton.schema import ChatCompletionRequest, message_text

# Tokens OpenAI's chat format adds per message (role markers, separators).
_PER_MESSAGE_OVERHEAD = 4
# Images are billed by tiles; a mid-sized image is a few hundred tokens.
_PER_IMAGE_TOKENS = 765


def estimate_text_tokens(text: str) -> int:
    """Tokens in ``text``: ~4 ASCII characters a token, one per non-ASCII character."""
    if not text:
        return 0
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    ascii_chars = len(text) - non_ascii
    return max(1, math.ceil(ascii_chars / 4) + non_ascii)


def estimate_prompt_tokens(request: ChatCompletionRequest) -> int:
    """Tokens the request's messages (and tool definitions) will use as input."""
    total = 0
    for message in request.messages:
        content = getattr(message, "content", None)
        total += _PER_MESSAGE_OVERHEAD + estimate_text_tokens(message_text(content))
        if isinstance(content, list):
            total += _PER_IMAGE_TOKENS * sum(
                1 for part in content if getattr(part, "type", "") == "image_url"
            )
    for tool in request.tools or []:
        total += estimate_text_tokens(tool.model_dump_json())
    return total
