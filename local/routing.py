"""Match requests to functions by the API events in template.yaml.

API Gateway REST resource paths such as `/callbacks/success/{proxy+}` become
patterns. As in API Gateway, a path without variables wins over one with
variables, and a greedy `{name+}` variable matches last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from local.template import FunctionSpec

_VARIABLE = re.compile(r"^\{(?P<name>[A-Za-z0-9_]+)(?P<greedy>\+?)\}$")


@dataclass(frozen=True)
class RouteMatch:
    """The function a request goes to, with API Gateway's resource fields."""

    function: str
    resource: str
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class _CompiledRoute:
    function: str
    resource: str
    method: str
    pattern: re.Pattern[str]
    rank: tuple[int, int, int]


def _compile(resource: str) -> tuple[re.Pattern[str], tuple[int, int, int]]:
    parts = []
    variables = 0
    greedy = 0
    for segment in resource.strip("/").split("/"):
        match = _VARIABLE.match(segment)
        if match is None:
            parts.append(re.escape(segment))
        elif match["greedy"]:
            greedy += 1
            parts.append(f"(?P<{match['name']}>.+)")
        else:
            variables += 1
            parts.append(f"(?P<{match['name']}>[^/]+)")
    pattern = re.compile("/" + "/".join(parts) + r"/?\Z")
    # Fewer greedy variables first, then fewer variables, then longer paths.
    return pattern, (greedy, variables, -len(parts))


class Router:
    """Routes of every function, in API Gateway's order of preference."""

    def __init__(self, functions: Iterable[FunctionSpec]) -> None:
        routes = []
        for spec in functions:
            for route in spec.routes:
                pattern, rank = _compile(route.path)
                routes.append(
                    _CompiledRoute(
                        function=spec.logical_id,
                        resource=route.path,
                        method=route.method.upper(),
                        pattern=pattern,
                        rank=rank,
                    )
                )
        self._routes = sorted(routes, key=lambda route: route.rank)

    def match(self, method: str, path: str) -> RouteMatch | None:
        """Return where `method` on `path` goes, or None (API Gateway's 403)."""
        for route in self._routes:
            if route.method not in ("ANY", method.upper()):
                continue
            found = route.pattern.match(path)
            if found is None:
                continue
            return RouteMatch(
                function=route.function,
                resource=route.resource,
                # API Gateway passes path parameters URL-decoded.
                path_parameters={
                    name: unquote(value) for name, value in found.groupdict().items()
                },
            )
        return None
