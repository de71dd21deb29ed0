"""Fitting a request to the provider that will answer it (design decision 5).

A field the provider cannot honour is dropped and named in ``x-baton-dropped-params``,
or, with ``BATON_DROP_UNSUPPORTED_PARAMS=false``, rejected with a 400 naming it.
"""

from __future__ import annotations

from baton.errors import UnsupportedParameterError
from baton.providers.base import COMMON_FIELDS, Provider
from baton.schema import ChatCompletionRequest


def fit_to_provider(
    request: ChatCompletionRequest, provider: Provider, drop_unsupported: bool
) -> tuple[ChatCompletionRequest, list[str]]:
    """The request with unsupported fields removed, and their names (sorted)."""
    unsupported = sorted(request.explicit_fields() - COMMON_FIELDS - provider.supported_fields)
    if not unsupported:
        return request, []
    if not drop_unsupported:
        raise UnsupportedParameterError(
            f"The provider '{provider.name}' does not support: {', '.join(unsupported)}.",
            param=unsupported[0],
        )
    fitted = ChatCompletionRequest.model_validate(
        request.model_dump(exclude=set(unsupported), exclude_unset=True)
    )
    return fitted, unsupported
