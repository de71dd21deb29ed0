"""The OpenAI endpoint: ``/v1/chat/completions``, ``/v1/models``, ``/v2/chat``,
``/v2/chat/batch`` and ``/openapi.json`` as one FastAPI (ASGI) app.

Deployed, Lambda Web Adapter runs it behind a Function URL (the ``function_url``
entry); the HTTP API's buffered ``POST /v2/chat`` runs the same app through Mangum
(the ``http_api`` entry, whose deadline stays below API Gateway's 30 s cut).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from baton import __version__
from baton.ai.batch import BatchRequest, BatchResponse, run_batch
from baton.ai.context import RequestContext
from baton.ai.retry import MIN_ATTEMPT_S
from baton.api.deadline import platform_remaining_s, request_deadline
from baton.api.errors import error_response_parts
from baton.api.lifecycle import after_restore
from baton.api.middleware import RequestIdAndSizeLimit
from baton.api.origin import OriginGuard
from baton.api.sse import open_stream
from baton.clock import Deadline
from baton.config import get_settings
from baton.errors import (
    BatonError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    validation_error,
)
from baton.runtime import get_runtime
from baton.schema import ChatCompletion, ChatCompletionRequest
from baton.store.base import ApiKeyRecord
from baton.usage import MICRO_USD_PER_USD

Entry = Literal["function_url", "http_api"]

_bearer = HTTPBearer(auto_error=False, description="A Baton API key: `Bearer bt_...`")


def _request_id(request: Request) -> str:
    state = request.scope.get("state", {})
    return str(state.get("request_id") or f"req_{uuid.uuid4().hex}")


async def _authenticate(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyRecord:
    """Auth before anything else; the store lookup runs off the event loop."""
    runtime = get_runtime()
    header = request.headers.get("authorization")
    return await anyio.to_thread.run_sync(runtime.authenticator.authenticate, header)


Caller = Annotated[ApiKeyRecord, Depends(_authenticate)]


def create_app(entry: Entry = "function_url") -> FastAPI:
    """Build the ASGI app for one entry point."""
    app = FastAPI(
        title="Baton",
        version=__version__,
        description="OpenAI-compatible AI gateway. Errors use OpenAI's error shape.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    _install_error_handlers(app)

    def deadline(request: Request, streamed: bool, requested_s: float | None) -> Deadline:
        runtime = get_runtime()
        settings = runtime.settings
        if entry == "http_api":
            limit = settings.http_api_timeout_s
        elif streamed:
            limit = settings.stream_max_seconds
        else:
            limit = settings.request_timeout_s
        platform = platform_remaining_s(request.scope, runtime.clock)
        return request_deadline(runtime.clock, limit, platform, requested_s)

    def context(request: Request, key: ApiKeyRecord, body: ChatCompletionRequest) -> RequestContext:
        requested = body.baton.timeout_s if body.baton else None
        return RequestContext(
            request_id=_request_id(request),
            key=key,
            request=body,
            deadline=deadline(request, bool(body.stream), requested),
            started_at=get_runtime().clock.monotonic(),
        )

    async def stream(ctx: RequestContext) -> Response:
        if entry == "http_api":
            raise InvalidRequestError(
                "This API Gateway route is buffered; stream from the OpenAI endpoint "
                "(the Function URL) instead, or send stream=false.",
                param="stream",
                code="streaming_unavailable",
            )
        runtime = get_runtime()
        return await open_stream(
            runtime.orchestrator.stream(ctx),
            ctx.response_headers,
            ctx.request_id,
            runtime.settings.stream_keepalive_s,
        )

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        tags=["OpenAI-compatible"],
        summary="Create a chat completion (OpenAI's API)",
    )
    async def chat_completions(
        request: Request, body: ChatCompletionRequest, key: Caller
    ) -> Response:
        ctx = context(request, key, body)
        if body.stream:
            return await stream(ctx)
        completion = await get_runtime().orchestrator.complete(ctx)
        return JSONResponse(completion.to_wire(), headers=ctx.response_headers())

    @app.post(
        "/v2/chat",
        tags=["Baton"],
        summary="Chat with Baton's options in the body; answers the completion plus a "
        "'baton' object saying how it was served",
    )
    async def chat_v2(request: Request, body: ChatCompletionRequest, key: Caller) -> Response:
        ctx = context(request, key, body)
        if body.stream:
            return await stream(ctx)
        completion = await get_runtime().orchestrator.complete(ctx)
        return JSONResponse(v2_body(ctx, completion), headers=ctx.response_headers())

    @app.post(
        "/v2/chat/batch",
        response_model=BatchResponse,
        tags=["Baton"],
        summary="Several chat requests in one call, answered in order, one result or error each",
    )
    async def chat_batch(request: Request, body: BatchRequest, key: Caller) -> JSONResponse:
        runtime = get_runtime()
        settings = runtime.settings
        request_id = _request_id(request)
        batch_deadline = deadline(request, False, None)

        async def run_item(index: int, item: ChatCompletionRequest) -> dict[str, Any]:
            ctx = RequestContext(
                request_id=f"{request_id}-{index}",
                key=key,
                request=item,
                deadline=batch_deadline,
                started_at=runtime.clock.monotonic(),
            )
            completion = await runtime.orchestrator.complete(ctx)
            return v2_body(ctx, completion)

        result = await run_batch(
            body,
            run_item,
            batch_deadline,
            concurrency=settings.batch_concurrency,
            max_items=settings.batch_max_items,
            min_start_s=settings.durations.seconds(MIN_ATTEMPT_S),
        )
        return JSONResponse(result.model_dump(mode="json", exclude_none=True))

    @app.get("/v1/models", tags=["OpenAI-compatible"], summary="List the models Baton serves")
    async def list_models(key: Caller) -> JSONResponse:
        runtime = get_runtime()
        data = [
            {"id": model.id, "object": "model", "created": 0, "owned_by": model.provider}
            for model in runtime.catalog
            if runtime.registry.servable(model)
        ]
        return JSONResponse({"object": "list", "data": data})

    @app.post("/_baton/after-restore", include_in_schema=False)
    async def after_snapstart_restore(request: Request) -> JSONResponse:
        """Lambda Web Adapter's SnapStart hook (AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH).

        Under the adapter, Python's own restore hooks never run in this process, so the
        adapter calls this route; only its in-sandbox requests may (platform requests
        carry x-amzn-request-context).
        """
        if "x-amzn-request-context" in request.headers:
            raise NotFoundError(f"Unknown route POST {request.url.path}.", code="unknown_route")
        after_restore()
        return JSONResponse({"status": "restored"})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        from baton.api.openapi import merged_openapi

        return JSONResponse(merged_openapi())

    settings = get_settings()
    app.add_middleware(RequestIdAndSizeLimit, max_body_bytes=settings.max_body_bytes)
    if entry == "function_url":
        app.add_middleware(OriginGuard, settings=settings)
    return app


def v2_body(ctx: RequestContext, completion: ChatCompletion) -> dict[str, Any]:
    """``/v2/chat``'s answer: the completion plus how Baton served it."""
    payload: dict[str, Any] = completion.to_wire()
    payload["baton"] = {
        "request_id": ctx.request_id,
        "provider": ctx.answered_by,
        "model": ctx.model.id if ctx.model else None,
        "cache": ctx.cache_status,
        "dropped_params": ctx.dropped_params,
        "degraded": sorted(ctx.degraded),
    }
    if ctx.route is not None:
        payload["baton"].update(
            routed=ctx.route.auto,
            task_type=ctx.route.classification.task_type,
            complexity=ctx.route.classification.complexity,
            estimated_cost_usd=ctx.route.estimate.cost_micro_usd / MICRO_USD_PER_USD,
        )
    return payload


def _install_error_handlers(app: FastAPI) -> None:
    async def baton_error(request: Request, exc: Exception) -> JSONResponse:
        status, body, headers = error_response_parts(exc, _request_id(request))
        return JSONResponse(body, status_code=status, headers=headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await baton_error(request, validation_error(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: BatonError
        if exc.status_code == 404:
            error = NotFoundError(
                f"Unknown route {request.method} {request.url.path}.", code="unknown_route"
            )
        elif exc.status_code == 405:
            error = MethodNotAllowedError(
                f"Method {request.method} is not allowed on {request.url.path}."
            )
        else:
            error = InvalidRequestError(str(exc.detail))
        return await baton_error(request, error)

    app.add_exception_handler(BatonError, baton_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
