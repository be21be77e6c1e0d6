"""Validating answers against Xero's own OpenAPI descriptions (tests/contract/xero/), which no
one here writes: for a method, a path and a status, the schema the description gives, read
strictly — an answer may carry only the fields the description names (plus the envelope and
date-string fields that its examples show everywhere), with the types and values it allows.

OpenAPI 3.0 schemas are JSON Schema with a few differences; those that Xero's files use are
handled here: `nullable`, references into `components`, `readOnly`.
"""

import copy
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

HERE = Path(__file__).parent / "xero"
# Shown in the description's examples of nearly every answer but missing from its schemas.
FROM_EXAMPLES = {
    "Id",
    "Status",
    "ProviderName",
    "DateTimeUTC",
    "DateString",
    "DueDateString",
    "DateUTCString",
}
# Xero echoes the whole refused object in an error's Elements, whatever it is.
OPEN_SCHEMAS = {"Element"}
DOCUMENTS = {"accounting": "xero_accounting.yaml", "identity": "xero-identity.yaml"}


@dataclass(frozen=True)
class Operation:
    api: str
    method: str
    template: str
    operation_id: str
    responses: dict


def _strict(schema, name: str | None = None):
    """Every object schema closed to fields the description does not name."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if schema.pop("nullable", False) and "type" in schema:
            schema["type"] = [schema["type"], "null"]
        closable = "properties" in schema and "additionalProperties" not in schema
        if closable and name not in OPEN_SCHEMAS:
            schema["properties"] = {
                **{field: {} for field in FROM_EXAMPLES},
                **schema["properties"],
            }
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def description(api: str) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load((HERE / DOCUMENTS[api]).read_text(), Loader=loader)  # noqa: S506
    schemas = document["components"]["schemas"]
    document["components"]["schemas"] = {
        name: _strict(schema, name) for name, schema in schemas.items()
    }
    return document


@cache
def _registry(api: str) -> Registry:
    resource = Resource.from_contents(description(api), default_specification=DRAFT7)
    return Registry().with_resource(f"urn:xero:{api}", resource)


@cache
def operations(api: str) -> tuple[Operation, ...]:
    found = []
    for template, item in description(api)["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete"):
                found.append(
                    Operation(
                        api,
                        method.upper(),
                        template,
                        operation["operationId"],
                        operation.get("responses", {}),
                    )
                )
    return tuple(found)


def operation_for(api: str, method: str, path: str) -> Operation:
    """The described operation a request is, matching path templates case-insensitively (as
    Xero's paths are); a literal segment beats a parameter."""
    candidates = []
    for operation in operations(api):
        if operation.method != method.upper():
            continue
        segments = operation.template.split("/")
        pattern = "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segments)
        pattern = f"^{pattern}/?$"
        if re.match(pattern, path, re.IGNORECASE):
            candidates.append((operation.template.count("{"), operation))
    if not candidates:
        raise AssertionError(f"{method} {path} is not in Xero's {api} description")
    return min(candidates, key=lambda pair: pair[0])[1]


def _response_schema(operation: Operation, status: int) -> dict | None:
    response = operation.responses.get(str(status))
    if response is None:
        return None
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = description(operation.api)["components"]["responses"][name]
    content = (response.get("content") or {}).get("application/json")
    return content and content.get("schema")


def validate(api: str, method: str, path: str, status: int, body) -> Operation:
    """Check one answer: its status must be one the operation describes (or one Xero's gateway
    answers for every call: 401, 403, 404, 429, 5xx), and a described JSON answer must match
    its schema. Returns the operation."""
    operation = operation_for(api, method, path)
    gateway = status in (401, 403, 404, 429) or status >= 500
    # Any refused write is a ValidationException, described once for all (400Error).
    refused_write = status == 400 and method != "GET" and api == "accounting"
    if str(status) not in operation.responses and not (gateway or refused_write):
        raise AssertionError(
            f"{operation.operation_id} answered {status}, which the description does not list "
            f"({', '.join(operation.responses)})"
        )
    schema = _response_schema(operation, status)
    if schema is None and refused_write:
        schema = {"$ref": "#/components/schemas/Error"}
    if schema is not None:
        root = {**copy.deepcopy(schema)}
        if "$ref" in root:
            root["$ref"] = f"urn:xero:{api}{root['$ref']}"
        else:
            root = _rebase(root, api)
        validator = jsonschema.Draft7Validator(root, registry=_registry(api))
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            details = "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in errors[:5]
            )
            raise AssertionError(f"{operation.operation_id} ({status}) does not match: {details}")
    return operation


def _rebase(schema, api: str):
    """References of an inline schema, made absolute."""
    if isinstance(schema, dict):
        return {
            key: (f"urn:xero:{api}{value}" if key == "$ref" else _rebase(value, api))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(item, api) for item in schema]
    return _strict(schema)
