"""Schema of `reports/results.json` and a small validator, so the Pi needs no `jsonschema`.

The dict below is valid JSON Schema (draft 2020-12), and the harness tests check it with
`jsonschema` where installed; `validate` implements just the keywords it uses.
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "segconform.results/1"

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")

# Non-finite floats are written as strings by CaseResult.to_json (JSON has no NaN).
_NUMBER = {"anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]}
CASE_KEYS = ("suite", "model", "format", "profile")  # what names a case in every row
_CASE = {key: {"type": "string"} for key in CASE_KEYS}

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*CASE_KEYS, "metrics", "budgets", "info", "outcome", "message", "nodeid"],
    "properties": {
        **_CASE,
        "metrics": {"type": "object", "additionalProperties": _NUMBER},
        "budgets": {"type": "object", "additionalProperties": _NUMBER},
        "info": {"type": "object"},
        "outcome": {"enum": list(OUTCOMES)},
        "message": {"type": "string"},
        "nodeid": {"type": "string"},
    },
    "additionalProperties": False,
}

# A quantised case that failed and what answers it (conformance/remedies.py: repair_rows).
REPAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*CASE_KEYS, "outcome", "remedies"],
    "properties": {
        **_CASE,
        "outcome": {"enum": list(OUTCOMES)},
        "remedies": {"type": "array", "items": {
            "type": "object", "required": ["name", "after", "outcome"],
            "properties": {"name": {"type": "string"}, "after": {"type": "string"},
                           "outcome": {"type": "string"}}}},
        "searched": {"type": "string"},
        "layers_to_change": {"type": "integer", "minimum": 0},
        "upstream": {"type": "string"},
    },
    "additionalProperties": False,
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "segconform results",
    "type": "object",
    "required": ["schema", "created", "environment", "summary", "results"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "environment": {
            "type": "object",
            "required": ["python", "platform", "machine", "host", "cpu_count", "libraries"],
            "properties": {
                "python": {"type": "string"},
                "platform": {"type": "string"},
                "machine": {"type": "string"},
                "host": {"type": "string"},
                "cpu_count": {"type": ["integer", "null"]},
                "cpu": {"type": "string"},
                "cpu_isa": {"type": "string"},
                "libraries": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "summary": {
            "type": "object",
            "required": ["total", *OUTCOMES, "exit_status"],
            "properties": {
                "total": {"type": "integer", "minimum": 0},
                **{name: {"type": "integer", "minimum": 0} for name in OUTCOMES},
                "exit_status": {"type": "integer"},
            },
            "additionalProperties": False,
        },
        "results": {"type": "array", "items": RESULT_SCHEMA},
        "repairs": {"type": "array", "items": REPAIR_SCHEMA},
    },
    "additionalProperties": False,
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    # bool is an int in Python but not a number in JSON.
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def validate(instance: Any, schema: dict[str, Any] = RESULTS_SCHEMA, path: str = "$") -> list[str]:
    """Errors of `instance` against `schema` (subset of JSON Schema); empty when valid."""
    errors: list[str] = []
    if "anyOf" in schema and all(validate(instance, o, path) for o in schema["anyOf"]):
        errors.append(f"{path}: {instance!r} matches none of {schema['anyOf']}")
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}, got {instance!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} not one of {schema['enum']}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(instance, name) for name in names):
            errors.append(f"{path}: expected {'/'.join(names)}, got {type(instance).__name__}")
            return errors
    if "minimum" in schema and _is_type(instance, "number") and instance < schema["minimum"]:
        errors.append(f"{path}: {instance} < minimum {schema['minimum']}")
    if isinstance(instance, dict):
        errors += _validate_object(instance, schema, path)
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += validate(item, schema["items"], f"{path}[{index}]")
    return errors


def _validate_object(instance: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}: missing {key!r}" for key in schema.get("required", [])
              if key not in instance]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if not isinstance(key, str):
            errors.append(f"{path}: key {key!r} is not a string")
        elif key in properties:
            errors += validate(value, properties[key], f"{path}.{key}")
        elif extra is False:
            errors.append(f"{path}: unexpected key {key!r}")
        elif isinstance(extra, dict):
            errors += validate(value, extra, f"{path}.{key}")
    return errors
