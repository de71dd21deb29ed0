"""The SAM template keeps its promises (design brief, "Deployed surface").

Two views of ``template.yaml``: the source (as cfn-lint decodes it, tags turned into
intrinsic functions) and what CloudFormation deploys, produced by the real SAM
translator (``samtranslator``, shipped with aws-sam-cli). Promises SAM fulfils by
generating resources (the Function URL's permissions, the SnapStart versions and
aliases, Globals merged into every function) are checked on the translated template, so
a template edit or a SAM upgrade that loses them fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode_str
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from baton.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent

# The pinned contract's HTTP API routes and the function that serves each.
HTTP_API_ROUTES = {
    ("POST", "/v2/chat"): "ChatApiFunction",
    ("POST", "/v2/route-suggest"): "RouteSuggestFunction",
    ("GET", "/v2/health"): "HealthFunction",
    ("GET", "/v2/usage"): "UsageFunction",
    ("GET", "/v2/usage/export"): "UsageFunction",
    ("DELETE", "/v2/usage"): "UsageFunction",
}
# Lambda Web Adapter's first layer version with SnapStart hooks (adapter 1.1.0).
FIRST_SNAPSTART_ADAPTER_LAYER = 30


def _plain(node: Any) -> Any:
    """cfn-lint's decoded nodes as plain dicts, lists and strings."""
    return json.loads(json.dumps(node))


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    template, problems = decode_str(TEMPLATE.read_text())
    assert not problems, problems
    return _plain(template)


@pytest.fixture(scope="module")
def deployed(source: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template SAM's transform makes of ours."""
    template = json.loads(json.dumps(source))
    # The transform wants uploaded code; `sam deploy` swaps local paths for S3 URIs too.
    for resource in template["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://bucket/{resource['Properties'][key]}"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    translated: dict[str, Any] = translator.translate(
        template, parameter_values={}, get_managed_policy_map=dict
    )
    return translated


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _env(resource: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = resource["Properties"].get("Environment", {}).get("Variables", {})
    return variables


def _statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every IAM statement of the deployed template (roles' inline and managed policies);
    a conditional statement (Fn::If) yields both branches."""
    documents = [
        policy["PolicyDocument"]
        for role in _of_type(template, "AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ] + [
        policy["Properties"]["PolicyDocument"]
        for policy in _of_type(template, "AWS::IAM::ManagedPolicy").values()
    ]
    for document in documents:
        for statement in document["Statement"]:
            if "Fn::If" in statement:
                yield from (s for s in statement["Fn::If"][1:] if "Ref" not in s)
            else:
                yield statement


# --- the OpenAI endpoint ------------------------------------------------------------------


def test_function_url_streams_and_is_public_with_both_permissions(
    deployed: dict[str, Any],
) -> None:
    urls = _of_type(deployed, "AWS::Lambda::Url")
    assert list(urls) == ["ChatFunctionUrl"]
    url = urls["ChatFunctionUrl"]["Properties"]
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == "NONE"
    alias = _ref(url["TargetFunctionArn"])
    assert alias == "ChatFunctionAliaslive"

    # Since October 2025 a public Function URL needs lambda:InvokeFunctionUrl *and*
    # lambda:InvokeFunction (the latter limited to calls made through the URL).
    permissions = [
        p["Properties"]
        for p in _of_type(deployed, "AWS::Lambda::Permission").values()
        if _ref(p["Properties"]["FunctionName"]) == alias
    ]
    by_action = {p["Action"]: p for p in permissions}
    assert set(by_action) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert by_action["lambda:InvokeFunctionUrl"]["Principal"] == "*"
    assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert by_action["lambda:InvokeFunction"]["Principal"] == "*"
    assert by_action["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True


def test_chat_function_runs_the_asgi_app_under_lambda_web_adapter(
    source: dict[str, Any],
) -> None:
    chat = source["Resources"]["ChatFunction"]["Properties"]
    assert chat["Handler"] == "run.sh"
    run_sh = ROOT / chat["CodeUri"] / "run.sh"
    assert os.access(run_sh, os.X_OK), "run.sh must be executable"
    assert "uvicorn app:app" in run_sh.read_text()
    assert re.search(r"^uvicorn\b", (ROOT / chat["CodeUri"] / "requirements.txt").read_text(), re.M)

    env = _env(source["Resources"]["ChatFunction"])
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_PORT"] and env["AWS_LWA_READINESS_CHECK_PATH"].startswith("/")

    adapter = [layer["Fn::Sub"] for layer in chat["Layers"] if "Fn::Sub" in layer]
    assert len(adapter) == 1
    match = re.fullmatch(r".*:753240598075:layer:LambdaAdapterLayer(\w+):(\d+)", adapter[0])
    assert match, adapter[0]
    arch = {"X86": "x86_64", "Arm64": "arm64"}[match[1]]
    assert source["Globals"]["Function"]["Architectures"] == [arch]
    assert int(match[2]) >= FIRST_SNAPSTART_ADAPTER_LAYER


def test_outputs_give_openai_clients_the_function_url_plus_v1(source: dict[str, Any]) -> None:
    outputs = source["Outputs"]
    assert outputs["OpenAIBaseUrl"]["Value"] == {"Fn::Sub": "${ChatFunctionUrl.FunctionUrl}v1"}
    assert outputs["FunctionUrl"]["Value"] == {"Fn::GetAtt": ["ChatFunctionUrl", "FunctionUrl"]}
    assert "${HttpApi}.execute-api" in outputs["HttpApiUrl"]["Value"]["Fn::Sub"]


# --- every function ------------------------------------------------------------------------


def test_every_function_is_python312_with_snapstart_alias_and_the_core_layer(
    deployed: dict[str, Any],
) -> None:
    functions = _of_type(deployed, "AWS::Lambda::Function")
    assert set(functions) == {
        "ChatFunction",
        "ChatApiFunction",
        "RouteSuggestFunction",
        "HealthFunction",
        "UsageFunction",
        "AggregateFunction",
    }
    (core_layer,) = [
        name
        for name, layer in _of_type(deployed, "AWS::Lambda::LayerVersion").items()
        if name.startswith("CoreLayer")
    ]
    layer_archs = deployed["Resources"][core_layer]["Properties"]["CompatibleArchitectures"]
    aliases = _of_type(deployed, "AWS::Lambda::Alias")
    versions = _of_type(deployed, "AWS::Lambda::Version")
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12", name
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        assert {"Ref": core_layer} in props["Layers"], name
        assert props["Architectures"] == layer_archs, name
        alias = aliases.get(f"{name}Aliaslive")
        assert alias is not None, f"{name} has no AutoPublishAlias"
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert _ref(versions[version]["Properties"]["FunctionName"]) == name


def test_every_handler_file_exists(source: dict[str, Any]) -> None:
    for name, function in _of_type(source, "AWS::Serverless::Function").items():
        props = function["Properties"]
        handler = props["Handler"]
        # A script (Lambda Web Adapter's run.sh) or module.attribute.
        file = handler if handler.endswith(".sh") else f"{handler.rsplit('.', 1)[0]}.py"
        assert (ROOT / props["CodeUri"] / file).is_file(), name


def test_every_event_source_targets_the_alias(deployed: dict[str, Any]) -> None:
    """SnapStart only applies to published versions: nothing may call $LATEST."""
    for permission in _of_type(deployed, "AWS::Lambda::Permission").values():
        target = _ref(permission["Properties"]["FunctionName"])
        assert target is not None and target.endswith("Aliaslive"), permission


def test_baton_variables_are_settings_the_app_reads(deployed: dict[str, Any]) -> None:
    """A typo in a variable name would silently fall back to a local default."""
    fields = set(Settings.model_fields)
    for name, function in _of_type(deployed, "AWS::Lambda::Function").items():
        for variable in _env(function):
            if variable.startswith("BATON_"):
                assert variable.removeprefix("BATON_").lower() in fields, (name, variable)


# --- the HTTP API --------------------------------------------------------------------------


def test_http_api_routes_reach_their_functions(source: dict[str, Any]) -> None:
    routes = {}
    for name, function in _of_type(source, "AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                assert props["ApiId"] == {"Ref": "HttpApi"}
                routes[(props["Method"], props["Path"])] = name
    assert routes == HTTP_API_ROUTES


def test_http_api_and_function_url_answer_cors_alike(source: dict[str, Any]) -> None:
    http_api = source["Globals"]["HttpApi"]["CorsConfiguration"]
    function_url = source["Resources"]["ChatFunction"]["Properties"]["FunctionUrlConfig"]["Cors"]
    assert http_api == function_url
    assert "authorization" in http_api["AllowHeaders"]
    assert {"x-request-id", "x-baton-cache", "retry-after"} <= set(http_api["ExposeHeaders"])


def test_aggregate_runs_on_an_eventbridge_schedule(deployed: dict[str, Any]) -> None:
    (rule,) = _of_type(deployed, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "AggregateSchedule"}
    (target,) = rule["Properties"]["Targets"]
    assert _ref(target["Arn"]) == "AggregateFunctionAliaslive"


# --- data and permissions ---------------------------------------------------------------


def test_tables_are_on_demand_with_pitr_bound_to_the_parameter(source: dict[str, Any]) -> None:
    assert source["Parameters"]["PointInTimeRecovery"]["Default"] == "true"
    assert source["Conditions"]["UsePointInTimeRecovery"] == {
        "Fn::Equals": [{"Ref": "PointInTimeRecovery"}, "true"]
    }
    tables = _of_type(source, "AWS::DynamoDB::Table")
    assert set(tables) == {"KeysTable", "UsageTable"}
    for name, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        pitr = props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        assert pitr == {"Fn::If": ["UsePointInTimeRecovery", True, False]}, name
        assert table["DeletionPolicy"] == "Retain", name

    keys = tables["KeysTable"]["Properties"]
    assert keys["KeySchema"] == [{"AttributeName": "key_hash", "KeyType": "HASH"}]
    indexes = {i["IndexName"]: i["KeySchema"] for i in keys["GlobalSecondaryIndexes"]}
    assert indexes == {
        "by_key_id": [{"AttributeName": "key_id", "KeyType": "HASH"}],
        "by_user": [{"AttributeName": "user", "KeyType": "HASH"}],
    }
    usage = tables["UsageTable"]["Properties"]
    assert usage["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]


def test_iam_grants_no_wildcard_actions_and_no_key_writes(deployed: dict[str, Any]) -> None:
    """Least privilege: named actions only; API keys are written by `baton keys` (an
    operator's credentials), never by a function."""
    statements = list(_statements(deployed))
    assert statements
    for statement in statements:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, statement
        resources = json.dumps(statement["Resource"])
        if "KeysTable" in resources:
            assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & set(
                actions
            ), statement


# --- CloudFront --------------------------------------------------------------------------


def test_cloudfront_is_optional_and_verifies_the_origin(source: dict[str, Any]) -> None:
    assert source["Parameters"]["EnableCloudFront"]["Default"] == "false"
    assert source["Conditions"]["UseCloudFront"] == {
        "Fn::Equals": [{"Ref": "EnableCloudFront"}, "true"]
    }
    resources = source["Resources"]
    for kind in ("AWS::CloudFront::Distribution", "AWS::SecretsManager::Secret"):
        for name, resource in _of_type(source, kind).items():
            assert resource.get("Condition") == "UseCloudFront", name
    assert source["Outputs"]["CloudFrontUrl"]["Condition"] == "UseCloudFront"

    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert set(origins) == {"openai-endpoint", "http-api"}
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "openai-endpoint"
    assert {b["PathPattern"] for b in config["CacheBehaviors"]} == {
        "/v2/route-suggest",
        "/v2/health",
        "/v2/usage*",
    }
    assert all(b["TargetOriginId"] == "http-api" for b in config["CacheBehaviors"])

    # The header CloudFront adds is the one the app is told to check, and its value is
    # the secret the app is told to read.
    (header,) = origins["openai-endpoint"]["OriginCustomHeaders"]
    env = _env(resources["ChatFunction"])
    assert env["BATON_ORIGIN_HEADER"] == {
        "Fn::If": ["UseCloudFront", header["HeaderName"], {"Ref": "AWS::NoValue"}]
    }
    assert env["BATON_ORIGIN_SECRET_PARAMETER"] == {
        "Fn::If": ["UseCloudFront", {"Ref": "OriginVerifySecret"}, {"Ref": "AWS::NoValue"}]
    }
    assert "${OriginVerifySecret}" in header["HeaderValue"]["Fn::Sub"]


# --- the linters -------------------------------------------------------------------------


@pytest.mark.slow
def test_cfn_lint_prints_nothing() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
