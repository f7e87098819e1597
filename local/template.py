"""Read template.yaml the way the local stack and the tests need it.

The local stack creates its table and bus from the template's own resource
definitions and routes requests by the template's API events, so that local
runs and the deployed stack cannot drift apart. Only the intrinsic functions
the template uses for those parts (Ref, Sub, Join, If on parameters) are
resolved here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"


class TemplateError(Exception):
    """Raised when the template lacks something the local stack needs."""


@dataclass(frozen=True)
class Route:
    """One API event of a function: an API Gateway resource path and method."""

    path: str
    method: str


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template, as the local gateway runs it."""

    logical_id: str
    code_uri: str
    handler: str
    environment: dict[str, str]
    routes: tuple[Route, ...] = field(default=())


class Template:
    """A parsed template with parameter values and local resource names."""

    def __init__(
        self,
        path: Path = TEMPLATE_PATH,
        *,
        stack_name: str = "skribble-callbacks-local",
        parameters: Mapping[str, str] | None = None,
        resource_names: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.stack_name = stack_name
        self.document: dict[str, Any] = cfn_yaml.load(str(path))
        self.parameters = self._parameter_values(parameters or {})
        # What `Ref` returns for a resource: its physical name or ARN.
        self.resource_names = dict(resource_names or {})

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self.document.get("Parameters", {}).items():
            value = overrides.get(name, spec.get("Default"))
            if spec.get("Type") == "CommaDelimitedList":
                value = [item for item in str(value or "").split(",") if item]
            values[name] = value
        unknown = set(overrides) - set(values)
        if unknown:
            raise TemplateError(f"Unknown template parameters: {sorted(unknown)}")
        return values

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return dict(self.document["Resources"][logical_id])
        except KeyError as exc:
            raise TemplateError(f"template.yaml has no resource {logical_id}") from exc

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.document["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsic functions the local stack relies on."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self._ref(argument)
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(item) for item in self.resolve(items))
            if name == "Fn::If":
                condition, if_true, if_false = argument
                return self.resolve(if_true if self.condition(condition) else if_false)
            if name == "Fn::Equals":
                left, right = self.resolve(argument)
                return left == right
            if name == "Fn::Not":
                return not self.resolve(argument[0])
            if name == "Condition":
                return self.condition(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resource_names:
            return self.resource_names[name]
        if name == "AWS::StackName":
            return self.stack_name
        if name == "AWS::NoValue":
            return None
        raise TemplateError(f"Cannot resolve Ref {name} locally")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument
            variables = {key: self.resolve(item) for key, item in variables.items()}
        else:
            text, variables = argument, {}
        result = str(text)
        for name in list(variables) + list(self.parameters) + ["AWS::StackName"]:
            token = "${" + name + "}"
            if token in result:
                value = variables[name] if name in variables else self._ref(name)
                result = result.replace(token, str(value))
        return result

    def functions(self) -> list[FunctionSpec]:
        """Return every function with its merged environment and API routes."""
        globals_ = self.document.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        specs = []
        for logical_id, resource in self.document["Resources"].items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            properties = resource.get("Properties", {})
            variables = {
                **global_env,
                **properties.get("Environment", {}).get("Variables", {}),
            }
            environment = {
                name: "" if value is None else str(self.resolve(value))
                for name, value in variables.items()
            }
            # template.yaml declares AWS_ENDPOINT_URL empty only so that
            # `sam local invoke --env-vars` can set it, and botocore treats
            # the empty value as unset. Dropping it here lets the local
            # stand-in's endpoint from the process environment apply instead
            # of an empty value that would send the functions to AWS.
            if environment.get(ENDPOINT_VARIABLE) == "":
                del environment[ENDPOINT_VARIABLE]
            routes = tuple(
                Route(
                    path=event["Properties"]["Path"],
                    method=event["Properties"]["Method"],
                )
                for event in properties.get("Events", {}).values()
                if event.get("Type") == "Api"
            )
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    code_uri=properties.get("CodeUri", globals_.get("CodeUri", "")),
                    handler=properties.get("Handler", globals_.get("Handler", "")),
                    environment=environment,
                    routes=routes,
                )
            )
        return specs
