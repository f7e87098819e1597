"""What template.yaml becomes after the SAM transform: security properties."""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform

from local.template import TEMPLATE_PATH, Template

CALLBACK_FUNCTIONS = [
    "SuccessFunction",
    "UpdateFunction",
    "ErrorFunction",
    "StartSignFunction",
    "InitiateFunction",
    "IdentErrorFunction",
]


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def translated(parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the CloudFormation template the SAM transform produces."""
    document = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE_PATH)), default=str))
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        # The transform wants S3 locations; `sam build` would supply them.
        for name in ("CodeUri", "ContentUri"):
            if name in properties:
                properties[name] = "s3://bucket/key"
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "eu-central-1"}):
        return transform(document, parameters or {}, _NoManagedPolicies())


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return translated()["Resources"]


def test_execute_api_endpoint_is_disabled(resources):
    body = resources["CallbacksApi"]["Properties"]["Body"]
    configuration = body["x-amazon-apigateway-endpoint-configuration"]

    assert configuration["disableExecuteApiEndpoint"] is True


def test_domain_requires_mutual_tls(resources):
    domain = resources["CallbacksDomain"]["Properties"]

    assert domain["SecurityPolicy"] == "TLS_1_2"
    assert domain["MutualTlsAuthentication"]["TruststoreUri"] == {
        "Ref": "TruststoreUri"
    }


@pytest.mark.parametrize("function", CALLBACK_FUNCTIONS)
def test_callback_role_has_no_wildcard_actions(resources, function):
    role = resources[f"{function}Role"]["Properties"]
    # A conditional policy is checked in its enabled form.
    policies = [
        policy["Fn::If"][1] if "Fn::If" in policy else policy
        for policy in role.get("Policies", [])
    ]
    actions = [
        action
        for policy in policies
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            statement["Action"]
            if isinstance(statement["Action"], list)
            else [statement["Action"]]
        )
    ]

    assert "dynamodb:UpdateItem" in actions
    assert "events:PutEvents" in actions
    assert "secretsmanager:GetSecretValue" in actions
    assert not [action for action in actions if "*" in action]


@pytest.mark.parametrize("function", CALLBACK_FUNCTIONS)
def test_callback_function_has_its_own_log_group(resources, function):
    logging = resources[function]["Properties"]["LoggingConfig"]

    assert logging["LogGroup"] == {"Ref": function.replace("Function", "LogGroup")}


def test_source_cidrs_become_a_deny_statement(resources):
    body = resources["CallbacksApi"]["Properties"]["Body"]
    statements = body["x-amazon-apigateway-policy"]["Statement"]

    [conditional] = [item for item in statements if "Fn::If" in item]
    condition, deny, _absent = conditional["Fn::If"]
    assert condition == "HasSourceCidrs"
    assert deny["Effect"] == "Deny"
    source_ips = deny["Condition"]["NotIpAddress"]["aws:SourceIp"]
    assert source_ips["Fn::Split"][0] == ","


def test_outputs_use_path_form_placeholders():
    outputs = cfn_yaml.load(str(TEMPLATE_PATH))["Outputs"]
    update_url = json.dumps(outputs["CallbackUpdateUrl"]["Value"])

    assert (
        "SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID/SKRIBBLE_SIGNATURE_ID"
        in (update_url)
    )
    assert "?" not in update_url


def test_two_source_cidrs_stay_two_after_transform():
    resources = translated({"AllowedSourceCidrs": "10.0.0.0/8,192.0.2.0/24"})[
        "Resources"
    ]
    body = resources["CallbacksApi"]["Properties"]["Body"]
    statements = body["x-amazon-apigateway-policy"]["Statement"]

    [conditional] = [item for item in statements if "Fn::If" in item]
    deny = conditional["Fn::If"][1]
    split = deny["Condition"]["NotIpAddress"]["aws:SourceIp"]["Fn::Split"]
    # Whether SAM resolves the parameter or leaves the Ref, CloudFormation
    # splits the string into one range per entry.
    assert split[0] == ","
    assert split[1] in ("10.0.0.0/8,192.0.2.0/24", {"Ref": "AllowedSourceCidrs"})


def test_every_function_declares_empty_endpoint(resources):
    functions = [
        resource
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
    ]

    assert functions
    for function in functions:
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["AWS_ENDPOINT_URL"] == ""


def test_local_environment_leaves_out_empty_endpoint():
    template = Template(resource_names={"CallbacksTable": "table", "EventBus": "bus"})

    for spec in template.functions():
        assert "AWS_ENDPOINT_URL" not in spec.environment
