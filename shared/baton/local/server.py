"""``baton serve`` (what ``make run`` starts): every route on one port, locally.

The OpenAI endpoint's routes go straight to the ASGI app Lambda Web Adapter runs
deployed; each HTTP API route becomes the event API Gateway would send and goes to the
same Powertools resolver its function runs. With no ``REDIS_URL`` an embedded Redis
starts; the store is the embedded one under ``BATON_DATA_DIR`` (default ``.baton``);
providers without an API key are answered by the simulated provider.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from baton.local.lambda_events import LocalLambdaContext, http_api_event

# HTTP API routes: (path, methods, the module whose Powertools resolver serves them)
HTTP_API_ROUTES: list[tuple[str, list[str], str]] = [
    ("/v2/health", ["GET"], "baton.api.health"),
    ("/v2/route-suggest", ["POST"], "baton.api.route_suggest"),
    ("/v2/usage", ["GET", "DELETE"], "baton.api.usage"),
    ("/v2/usage/export", ["GET"], "baton.api.usage"),
]


def _resolver_endpoint(module_name: str, function_name: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        import importlib

        resolver = importlib.import_module(module_name).app
        event = http_api_event(
            method=request.method,
            path=request.url.path,
            headers=dict(request.headers),
            query=request.url.query,
            body=await request.body(),
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        context = LocalLambdaContext(function_name=function_name)
        result: dict[str, Any] = await anyio.to_thread.run_sync(resolver.resolve, event, context)
        headers = {k: v for k, v in (result.get("headers") or {}).items() if isinstance(v, str)}
        return Response(
            content=result.get("body") or b"",
            status_code=int(result.get("statusCode", 200)),
            headers=headers,
        )

    return endpoint


def build_local_app() -> Starlette:
    """One ASGI app: the HTTP API routes as events, everything else to the chat app."""
    from baton.api.openai_app import create_app

    routes: list[Route | Mount] = [
        Route(path, _resolver_endpoint(module, module.rsplit(".", 1)[1]), methods=methods)
        for path, methods, module in HTTP_API_ROUTES
    ]
    routes.append(Mount("/", app=create_app("function_url")))
    return Starlette(routes=routes)


def _prepare_environment(data_dir: Path) -> str:
    """Local defaults (explicit environment wins); returns how Redis is provided."""
    os.environ.setdefault("BATON_DATA_DIR", str(data_dir))
    os.environ.setdefault("BATON_STORE", "embedded")
    os.environ.setdefault("BATON_SIMULATE_MISSING_PROVIDERS", "true")
    return os.environ.get("REDIS_URL") or ""


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from baton.config import get_settings
    from baton.local.dev_key import provision_from_environment
    from baton.local.embedded_redis import EmbeddedRedis
    from baton.runtime import get_runtime

    data_dir = Path(os.environ.get("BATON_DATA_DIR", ".baton"))
    data_dir.mkdir(parents=True, exist_ok=True)
    external_redis = _prepare_environment(data_dir)
    embedded = None
    if not external_redis:
        embedded = EmbeddedRedis(data_dir / "redis")
        os.environ["REDIS_URL"] = embedded.start()
    try:
        get_settings.cache_clear()
        runtime = get_runtime()
        dev_key = provision_from_environment(runtime.store)
        url = f"http://{args.host}:{args.port}"
        print(f"Baton listening on {url}  (OpenAI base_url: {url}/v1)")
        print(f"Data folder: {data_dir.resolve()}")
        print(f"Redis: {external_redis or 'embedded at ' + os.environ['REDIS_URL']}")
        for provider, status in runtime.registry.statuses().items():
            print(f"Provider {provider}: {status}")
        if dev_key:
            print(f"Dev API key provisioned for user '{dev_key.user}' (tier {dev_key.tier})")
        else:
            print("No BATON_DEV_API_KEY set: create a key with `baton keys create`.")
        uvicorn.run(build_local_app(), host=args.host, port=args.port, log_level="warning")
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve every route locally")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.set_defaults(func=serve)
