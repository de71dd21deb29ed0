"""Gemini's failures in Baton's hierarchy, translated once, at the SDK boundary.

The SDK raises its own ``APIError`` for an HTTP error status, but lets the transport's
exceptions through for timeouts and broken connections; it sends through httpx, its
fork httpx2 or aiohttp, whichever is installed and configured, so those are caught
from each of them. Gemini states the wait it wants either as a ``retry-after`` header
or as a ``RetryInfo`` detail in the error body, and words its context-window 400 its
own way; both are read here so the retry and fallback steps see one vocabulary.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from google.genai import errors as genai_errors

from baton.errors import BatonError, UpstreamError, UpstreamTimeoutError
from baton.providers.base import error_from_status, is_context_length_message

NAME = "google"

# Gemini words its context-window 400 differently from OpenAI: "The input token count
# (...) exceeds the maximum number of tokens allowed (...)".
_GEMINI_CONTEXT_MARKERS = ("input token count", "exceeds the maximum number of tokens")


def _exception_classes(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module_name, attribute in names:
        try:
            found.append(getattr(importlib.import_module(module_name), attribute))
        except ImportError:
            continue
    return tuple(found)


_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    *_exception_classes(("httpx", "TimeoutException"), ("httpx2", "TimeoutException")),
)
_CONNECTION_ERRORS = _exception_classes(
    ("httpx", "TransportError"), ("httpx2", "TransportError"), ("aiohttp", "ClientError")
)


def _retry_after(exc: genai_errors.APIError) -> float | None:
    """The wait Gemini asks for: the retry-after header, else the RetryInfo detail."""
    headers = getattr(exc.response, "headers", None)
    header = headers.get("retry-after") if headers is not None else None
    if header is not None:
        try:
            return float(header)
        except ValueError:
            pass  # an HTTP date; the body's RetryInfo is more precise anyway
    body = exc.details if isinstance(exc.details, dict) else {}
    for detail in body.get("error", body).get("details") or []:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", "")).removesuffix("s")
            try:
                return float(delay)
            except ValueError:
                return None
    return None


def translate_api_error(exc: genai_errors.APIError) -> BatonError:
    """An HTTP error status from Gemini in Baton's hierarchy."""
    message = exc.message or str(exc.status or "error")
    lowered = message.lower()
    context_length = is_context_length_message(message) or any(
        marker in lowered for marker in _GEMINI_CONTEXT_MARKERS
    )
    return error_from_status(
        NAME,
        exc.code,
        message,
        retry_after=_retry_after(exc),
        context_length=context_length,
    )


@contextmanager
def upstream_errors() -> Iterator[None]:
    """Translate the SDK's and transports' exceptions once, at this boundary."""
    try:
        yield
    except genai_errors.APIError as exc:
        raise translate_api_error(exc) from exc
    except _TIMEOUT_ERRORS as exc:
        raise UpstreamTimeoutError(
            f"{NAME}: no answer within the request's deadline", provider=NAME
        ) from exc
    except _CONNECTION_ERRORS as exc:
        raise error_from_status(NAME, None, f"connection failed ({type(exc).__name__})") from exc
    except genai_errors.UnknownApiResponseError as exc:
        raise UpstreamError(f"{NAME}: unreadable response", provider=NAME) from exc
