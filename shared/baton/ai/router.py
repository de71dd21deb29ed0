"""Routing: resolve the model a request goes to, and check that it fits.

Today the router resolves explicit provider-qualified ids from the catalog and sends
``auto`` to the configured default model; task classification and budget-aware
choice plug in here (``resolve`` stays the one entry point).
"""

from __future__ import annotations

from baton.catalog import Catalog, ModelInfo
from baton.errors import InvalidRequestError
from baton.schema import ChatCompletionRequest
from baton.tokens import estimate_prompt_tokens

AUTO = "auto"


class Router:
    """Picks the model for a request and refuses models that cannot serve it."""

    def __init__(self, catalog: Catalog, auto_model: str) -> None:
        self._catalog = catalog
        self._auto_model = auto_model

    def resolve(self, request: ChatCompletionRequest) -> ModelInfo:
        model_id = self._auto_model if request.model == AUTO else request.model
        model = self._catalog.get(model_id)
        check_fits(model, request)
        return model


def check_fits(model: ModelInfo, request: ChatCompletionRequest) -> None:
    """400 when the request needs something ``model`` does not have."""
    if request.has_images and not model.vision:
        raise InvalidRequestError(
            f"'{model.id}' does not accept images.", param="messages", code="model_no_vision"
        )
    if (request.tools or request.functions) and not model.tools:
        raise InvalidRequestError(
            f"'{model.id}' does not support tools.", param="tools", code="model_no_tools"
        )
    limit = request.output_token_limit
    if limit is not None and limit > model.max_output_tokens:
        raise InvalidRequestError(
            f"'{model.id}' can generate at most {model.max_output_tokens} tokens; "
            f"the request asks for {limit}.",
            param="max_tokens",
        )
    prompt_tokens = estimate_prompt_tokens(request)
    if prompt_tokens + (limit or 0) > model.context_window:
        raise InvalidRequestError(
            f"The prompt (about {prompt_tokens} tokens) does not fit the context window "
            f"of '{model.id}' ({model.context_window} tokens).",
            param="messages",
            code="context_length_exceeded",
        )
