"""Request limits beyond the schema: the bounds that protect Baton and its budgets
(design decision 9). Schema validation (types, ranges, unknown fields) happens when the
body is parsed; this step checks what depends on configuration.
"""

from __future__ import annotations

from baton.config import Settings
from baton.errors import InvalidRequestError, PayloadTooLargeError
from baton.schema import ChatCompletionRequest


def check_body_size(size: int, settings: Settings) -> None:
    """413 before parsing a body larger than ``BATON_MAX_BODY_BYTES``."""
    if size > settings.max_body_bytes:
        raise PayloadTooLargeError(
            f"Request body is {size} bytes; the limit is {settings.max_body_bytes} bytes."
        )


def check_request_limits(request: ChatCompletionRequest, settings: Settings) -> None:
    """400 for requests over the configured message and output-token bounds."""
    if len(request.messages) > settings.max_messages:
        raise InvalidRequestError(
            f"The request has {len(request.messages)} messages; the limit is "
            f"{settings.max_messages}.",
            param="messages",
        )
    limit = request.output_token_limit
    if limit is not None and limit > settings.max_output_tokens:
        raise InvalidRequestError(
            f"max_tokens of {limit} is above this deployment's limit of "
            f"{settings.max_output_tokens}.",
            param="max_completion_tokens" if request.max_completion_tokens else "max_tokens",
        )
    if request.n not in (None, 1):
        raise InvalidRequestError(
            "Baton returns one choice per request; send n=1 or omit it.", param="n"
        )
