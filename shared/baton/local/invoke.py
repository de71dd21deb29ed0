"""``baton invoke FUNCTION --event FILE``: run one function's handler on a sample event,
the way ``sam local invoke`` would, but in this process (no Docker).

What it mirrors from ``sam local invoke``: the function's settings come from
``template.yaml`` (the resource whose ``CodeUri`` is ``functions/FUNCTION/``, its
``Timeout`` and ``MemorySize``, ``Globals`` included); Lambda's own variables are set
(``AWS_LAMBDA_FUNCTION_NAME`` ..., and ``AWS_SAM_LOCAL=true``, which keeps Powertools'
tracer quiet); ``--env-vars`` takes SAM's file format (``{"Parameters": {...},
"ChatFunction": {...}}``); the handler's logs go to stderr and only the response goes to
stdout. What it does not: the template's ``Environment`` points at AWS (DynamoDB tables,
SSM parameters), so the function runs against the local services ``make run`` uses
instead (the embedded store, ``REDIS_URL`` or an embedded Redis), and
``BATON_DEV_API_KEY`` is provisioned as ``make run`` does.

The chat folder serves two resources: a Function URL event goes through the ASGI app
(``app.py``'s ``app``) the way Lambda Web Adapter would deliver it, via Mangum, which
reads Function URL payloads; any other event goes to the resource's ``Handler``.

Exit status: 0 when the handler returned (whatever the HTTP status in its answer), 1
when it raised or the function or event could not be loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from baton.local.lambda_events import LocalLambdaContext

# What Lambda assumes when a template states neither a function nor a global value.
LAMBDA_DEFAULT_TIMEOUT_S = 3
LAMBDA_DEFAULT_MEMORY_MB = 128
FUNCTIONS_DIR = "functions"
# The module and ASGI attribute run.sh starts under Lambda Web Adapter (`app:app`).
ASGI_MODULE, ASGI_APP = "app", "app"
# A function runs under Lambda Web Adapter when its handler script is wrapped by this.
WEB_ADAPTER_WRAPPER = "/opt/bootstrap"

Handler = Callable[[dict[str, Any], Any], Any]


class InvokeError(Exception):
    """The function, its template entry or the event could not be loaded."""


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` of the template, as far as invoking needs."""

    logical_id: str
    handler: str
    timeout_s: float
    memory_mb: int
    has_function_url: bool
    # Lambda Web Adapter runs the handler script (run.sh), which serves an ASGI app.
    runs_web_adapter: bool


def load_template(path: Path) -> dict[str, Any]:
    """``template.yaml`` as plain data; CloudFormation tags (``!Ref X``) become their
    argument, which is enough to read literal settings such as ``Timeout``."""
    import yaml  # a dev dependency: the layer never runs this command

    def untag(loader: Any, _suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_mapping(node, deep=True)

    # A private SafeLoader subclass, so the tag handling does not leak into yaml.SafeLoader.
    template_loader: Any = type("TemplateLoader", (yaml.SafeLoader,), {})
    template_loader.add_multi_constructor("!", untag)
    try:
        document = yaml.load(path.read_text(), Loader=template_loader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise InvokeError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise InvokeError(f"{path} is not a SAM template")
    return document


def _number(value: Any, default: int) -> int:
    """A literal number from the template; intrinsics and absent values get the default."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def find_functions(template: Mapping[str, Any], folder: str) -> list[FunctionSpec]:
    """Every function resource whose ``CodeUri`` is ``functions/<folder>/``."""
    globals_ = template.get("Globals", {}).get("Function", {})
    wanted = PurePosixPath(FUNCTIONS_DIR, folder)
    specs = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        own = resource.get("Properties", {})
        props = {**globals_, **own}
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str) or PurePosixPath(code_uri) != wanted:
            continue
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                handler=str(props.get("Handler", "")),
                timeout_s=_number(props.get("Timeout"), LAMBDA_DEFAULT_TIMEOUT_S),
                memory_mb=_number(props.get("MemorySize"), LAMBDA_DEFAULT_MEMORY_MB),
                has_function_url="FunctionUrlConfig" in props,
                runs_web_adapter=variables.get("AWS_LAMBDA_EXEC_WRAPPER") == WEB_ADAPTER_WRAPPER,
            )
        )
    return specs


def is_function_url_event(event: Mapping[str, Any]) -> bool:
    """Function URL payloads look like HTTP API v2 ones but for their domain name."""
    context = event.get("requestContext")
    domain = context.get("domainName", "") if isinstance(context, Mapping) else ""
    return ".lambda-url." in str(domain)


def choose_function(specs: list[FunctionSpec], event: Mapping[str, Any]) -> FunctionSpec:
    """The resource that would receive this event: the one behind the Function URL for
    a Function URL event, otherwise the one without a URL."""
    via_url = is_function_url_event(event)
    for spec in specs:
        if spec.has_function_url == via_url:
            return spec
    return specs[0]


def read_event(path: Path) -> dict[str, Any]:
    """The sample event: a JSON object, as Lambda delivers it."""
    try:
        event = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvokeError(f"cannot read --event {path}: {exc}") from exc
    if not isinstance(event, dict):
        raise InvokeError(f"--event {path} must hold a JSON object")
    return event


def read_env_vars(path: Path | None, logical_id: str) -> dict[str, str]:
    """Overrides from a SAM ``--env-vars`` file: ``Parameters`` for every function,
    then the section named after the function's logical id."""
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvokeError(f"cannot read --env-vars {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise InvokeError(f"--env-vars {path} must hold a JSON object")
    merged: dict[str, str] = {}
    for section in ("Parameters", logical_id):
        values = document.get(section) or {}
        if not isinstance(values, dict):
            raise InvokeError(f"--env-vars section {section!r} must be an object")
        merged.update({name: str(value) for name, value in values.items()})
    return merged


def lambda_environment(spec: FunctionSpec) -> dict[str, str]:
    """The variables Lambda (and ``sam local invoke``) set for every function."""
    return {
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout_s)),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }


def load_module(path: Path) -> ModuleType:
    """Import a function's module by file path: function folders are not packages, and
    on Lambda the folder itself is the task root on ``sys.path``."""
    if not path.is_file():
        raise InvokeError(f"{path} does not exist")
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"baton_function_{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise InvokeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_handler(folder: Path, spec: FunctionSpec) -> Handler:
    """The callable Lambda would call for this resource."""
    if spec.runs_web_adapter:
        from mangum import Mangum

        app = getattr(load_module(folder / f"{ASGI_MODULE}.py"), ASGI_APP)
        web_adapter: Handler = Mangum(app, lifespan="auto")
        return web_adapter
    module_name, _, attribute = spec.handler.rpartition(".")
    module = load_module(folder / f"{module_name.replace('.', '/')}.py")
    handler: Handler | None = getattr(module, attribute, None)
    if not callable(handler):
        raise InvokeError(f"{spec.handler} is not a callable in {folder}")
    return handler


@contextlib.contextmanager
def local_services() -> Iterator[None]:
    """What ``make run`` provides: Redis (``REDIS_URL``, else an embedded one) and the
    dev key from ``BATON_DEV_API_KEY``."""
    from baton.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    with contextlib.ExitStack() as stack:
        if not settings.redis_url and not settings.redis_url_parameter:
            from baton.local.embedded_redis import EmbeddedRedis

            os.environ["REDIS_URL"] = stack.enter_context(EmbeddedRedis(settings.data_dir))
            get_settings.cache_clear()
        if settings.dev_api_key:
            from baton.local.dev_key import provision_from_environment
            from baton.runtime import get_runtime

            provision_from_environment(get_runtime().store)
        yield


def run(args: argparse.Namespace) -> int:
    """Load, invoke, print; the exit status says whether the handler returned."""
    template_path: Path = args.template
    folder = template_path.parent / FUNCTIONS_DIR / args.function
    try:
        event = read_event(args.event)
        specs = find_functions(load_template(template_path), args.function)
        if not specs:
            raise InvokeError(f"no function in {template_path} has CodeUri {folder}/")
        spec = choose_function(specs, event)
        os.environ.update(lambda_environment(spec))
        os.environ.update(read_env_vars(args.env_vars, spec.logical_id))
        context = LocalLambdaContext(
            function_name=spec.logical_id,
            timeout_s=spec.timeout_s,
            memory_limit_in_mb=spec.memory_mb,
        )
        # Handlers log to stdout, as on Lambda; here stdout carries only the response.
        with contextlib.redirect_stdout(sys.stderr), local_services():
            handler = resolve_handler(folder, spec)
            response = handler(event, context)
    except InvokeError as exc:
        print(f"baton invoke: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # The handler (or its module) raised: report it the way Lambda does.
        traceback.print_exc(file=sys.stderr)
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        print(json.dumps(error, indent=2))
        return 1
    print(json.dumps(response, indent=2, default=str))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run one function's handler on a sample event (like sam local invoke)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("function", help="folder under functions/ (chat, health, usage ...)")
    parser.add_argument(
        "--event", "-e", type=Path, required=True, help="event JSON, e.g. events/health.json"
    )
    parser.add_argument(
        "--env-vars", "-n", type=Path, help="SAM-style JSON of environment variable overrides"
    )
    parser.add_argument(
        "--template", "-t", type=Path, default=Path("template.yaml"), help="the SAM template"
    )
    parser.set_defaults(func=run)
