"""The scoring routes' OpenAPI, generated from the served policies when the app is made.

The routes check their JSON themselves (serving/app.py says why), so FastAPI cannot infer what
they take; this module states it instead: each policy's item fields with their types, which of
them a request must carry (those of the policies it asks for: `allOf` of `if`/`then`, one per
policy), the limits of the settings, the decisions as an enumeration, every refusal with its
body, and the bearer scheme. `tests/integration/test_openapi.py` runs a schema-driven fuzzer
(schemathesis) against a real server to hold the two together.
"""

from __future__ import annotations

import re

from flywheel.policy import Policy
from flywheel.settings import Settings

DECISIONS = ["allow", "review", "auto_action"]
ERROR_CODES = {
    400: ("invalid_json", "The body is not JSON."),
    401: ("unauthorized", "No API key, or an unknown one."),
    403: ("forbidden", "An admin route without the admin key, or admin routes disabled."),
    404: (
        "unknown_policy | unknown_item",
        "A requested policy is not served, or no prediction of the appealed item is logged.",
    ),
    409: ("not_auto_actioned", "The appealed item was not auto-actioned: nothing to appeal."),
    413: ("too_large", "The body or the batch is over the limit."),
    422: (
        "invalid_request | invalid_item",
        "The request or an item does not hold what the policies need; `field` names it.",
    ),
    500: ("internal", "The server failed to answer; its log says why."),
    503: ("unavailable", "The prediction log could not be written; retry."),
}
SCORING_ERRORS = [400, 401, 404, 413, 422, 500, 503]
APPEAL_ERRORS = [400, 401, 404, 409, 413, 422, 500]
MAX_ITEM_ID = 512  # characters of an appealed item's id
ADMIN_ERRORS = [401, 403]
BEARER = [{"bearer": []}]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _fields(policy: Policy) -> list[str]:
    return [name for name in policy.feature_columns if name != "item_id"]


# JSON integers the server reads as integers (orjson: wider ones arrive as floats, refused)
INTEGER = {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1}


def _component(name: str) -> str:
    return "Item_" + re.sub(r"[^A-Za-z0-9._-]", "_", name)


def item_schemas(policies: list[Policy], settings: Settings) -> dict[str, dict]:
    """`Item` (what every item has: its id) and one `Item_<policy>` per policy: its fields,
    all required, typed as the check types them (`flywheel.records.ItemValidator`): numbers for
    numeric fields; strings, or integers read as text, for text and categories; `null` for
    unknown. A request's items must match the schema of every policy it asks for; fields of
    other policies are not looked at, so they are not typed on `Item`."""
    text = {
        "anyOf": [
            {"type": "string", "maxLength": settings.max_text_chars},
            INTEGER,
            {"type": "null"},
        ],
        "description": "Text or a category (blanks around it are stripped), at most "
        f"{settings.max_text_chars:,} characters (FLYWHEEL_MAX_TEXT_CHARS); null: unknown.",
    }
    number = {"type": ["number", "null"], "description": "null: unknown"}
    schemas = {
        "Item": {
            "type": "object",
            "properties": {
                "item_id": {
                    "description": "A string with a non-blank character, or an integer.",
                    "anyOf": [{"type": "string", "pattern": r"\S"}, INTEGER],
                }
            },
            "required": ["item_id"],
            "description": "An item: its id, and the fields of every policy asked for "
            "(`Item_<policy>`).",
        }
    }
    for policy in policies:
        numeric = set(policy.fields.numeric)
        fields = _fields(policy)
        schemas[_component(policy.name)] = {
            "type": "object",
            "description": f"The fields policy {policy.name} scores on.",
            "properties": {name: number if name in numeric else text for name in fields},
            "required": fields,
        }
    return schemas


def _requires(policies: list[Policy], carrier) -> list[dict]:
    """`if`/`then` rules: a request without `policies` (or with null) is scored on every
    served policy, so its items must match every `Item_<policy>`; each policy named adds its
    own. `carrier(schema)` places an item schema where the items are (the item, or each item
    of a batch)."""
    every = {"allOf": [_ref(_component(p.name)) for p in policies]}
    rules = [
        {
            "if": {
                "anyOf": [
                    {"not": {"required": ["policies"]}},
                    {"properties": {"policies": {"type": "null"}}},
                ]
            },
            "then": carrier(every),
        }
    ]
    for policy in policies:
        rules.append(
            {
                "if": {
                    "required": ["policies"],
                    "properties": {
                        "policies": {"type": "array", "contains": {"const": policy.name}}
                    },
                },
                "then": carrier(_ref(_component(policy.name))),
            }
        )
    return rules


def request_schemas(policies: list[Policy], settings: Settings) -> dict[str, dict]:
    names = [p.name for p in policies]
    chosen = {
        "type": ["array", "null"],
        "items": {"type": "string", "enum": names},
        "minItems": 1,
        "description": "Policies to score against (default, or null: every served one).",
    }

    def one(schema: dict) -> dict:
        return {"properties": {"item": schema}}

    def each(schema: dict) -> dict:
        return {"properties": {"items": {"items": schema}}}

    return {
        "ScoreRequest": {
            "type": "object",
            "properties": {"item": _ref("Item"), "policies": chosen},
            "required": ["item"],
            "allOf": _requires(policies, one),
        },
        "BatchRequest": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": _ref("Item"),
                    "minItems": 1,
                    "maxItems": settings.max_batch_items,
                    "description": "At most FLYWHEEL_MAX_BATCH_ITEMS "
                    f"({settings.max_batch_items:,}) items.",
                },
                "policies": chosen,
            },
            "required": ["items"],
            "allOf": _requires(policies, each),
        },
    }


def response_schemas(policies: list[Policy]) -> dict[str, dict]:
    result = {
        "type": "object",
        "properties": {
            "policy": {"type": "string", "enum": [p.name for p in policies]},
            "model_version": {"type": ["integer", "null"], "description": "null: no model"},
            "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "decision": {"type": "string", "enum": DECISIONS},
            "fallback": {
                "type": "boolean",
                "description": "No champion could score: the policy's fallback decision.",
            },
        },
        "required": ["policy", "model_version", "score", "decision", "fallback"],
    }
    request_id = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
    results = {"type": "array", "items": _ref("PolicyResult"), "minItems": 1}
    item_id = {"type": "string"}
    return {
        "PolicyResult": result,
        "ScoreResponse": {
            "type": "object",
            "properties": {"request_id": request_id, "item_id": item_id, "results": results},
            "required": ["request_id", "item_id", "results"],
        },
        "BatchResponse": {
            "type": "object",
            "properties": {
                "request_id": request_id,
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"item_id": item_id, "results": results},
                        "required": ["item_id", "results"],
                    },
                },
            },
            "required": ["request_id", "results"],
        },
        "Error": {
            "type": "object",
            "properties": {
                "request_id": request_id,
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {
                            "type": "string",
                            "enum": sorted(
                                {c for code, _ in ERROR_CODES.values() for c in code.split(" | ")}
                            ),
                        },
                        "message": {"type": "string"},
                        "field": {
                            "type": "string",
                            "description": "The item and field, e.g. `items[3].text`.",
                        },
                    },
                    "required": ["code", "message"],
                },
            },
            "required": ["request_id", "error"],
        },
    }


def appeal_schemas(policies: list[Policy]) -> dict[str, dict]:
    """An appeal as asked for and as kept (`flywheel.appeals`)."""
    text = {"type": "string", "pattern": r"\S"}
    return {
        "AppealRequest": {
            "type": "object",
            "properties": {
                "policy": {"type": "string", "enum": [p.name for p in policies]},
                "item_id": {**text, "maxLength": MAX_ITEM_ID},
                "reason": {
                    **text,
                    "description": "Why the decision is wrong, in the user's words.",
                },
            },
            "required": ["policy", "item_id", "reason"],
        },
        "Appeal": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "created": {
                    "type": "boolean",
                    "description": "false: the item was appealed before; this is that appeal.",
                },
                "appeal": {
                    "type": "object",
                    "properties": {
                        "appeal_id": {"type": "string"},
                        "item_id": {"type": "string"},
                        "reason": {"type": "string"},
                        "appealed_at": {"type": "string", "format": "date-time"},
                        "decision": {"type": "string", "enum": ["auto_action"]},
                        "model_version": {"type": "integer"},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["appeal_id", "item_id", "reason", "decision", "model_version"],
                },
            },
            "required": ["request_id", "created", "appeal"],
        },
    }


def _errors(statuses: list[int]) -> dict:
    return {
        str(status): {
            "description": f"`{ERROR_CODES[status][0]}`: {ERROR_CODES[status][1]}",
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for status in statuses
    }


def _scoring_route(request: str, response: str, summary: str) -> dict:
    return {
        "summary": summary,
        "security": BEARER,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(request)}},
        },
        "responses": {
            "200": {
                "description": "Scores and decisions, one per requested policy.",
                "content": {"application/json": {"schema": _ref(response)}},
            },
            **_errors(SCORING_ERRORS),
        },
    }


def scoring_openapi(base: dict, policies: list[Policy], settings: Settings) -> dict:
    """FastAPI's document (`base`) with the scoring routes described as they behave."""
    document = dict(base)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("ScoreRequest", "BatchRequest", "PolicyResult", "ScoreResponse", "BatchResponse"):
        schemas.pop(name, None)
    schemas.update(item_schemas(policies, settings))
    schemas.update(request_schemas(policies, settings))
    schemas.update(response_schemas(policies))
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key."}
    }
    paths = document["paths"]
    paths["/v1/score"] = {
        "post": _scoring_route(
            "ScoreRequest", "ScoreResponse", "Score one item against the policies asked for."
        )
    }
    paths["/v1/score/batch"] = {
        "post": _scoring_route(
            "BatchRequest", "BatchResponse", "Score a batch of items in one call."
        )
    }
    schemas.update(appeal_schemas(policies))
    appealed = {
        "description": "The appeal (already received: `created` is false).",
        "content": {"application/json": {"schema": _ref("Appeal")}},
    }
    paths["/v1/appeals"] = {
        "post": {
            "summary": "Appeal an item the API auto-actioned: a reviewer will look again.",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("AppealRequest")}},
            },
            "responses": {"200": appealed, "201": appealed, **_errors(APPEAL_ERRORS)},
        }
    }
    reload = paths["/v1/admin/reload"]["post"]
    reload["security"] = BEARER
    reload["responses"].update(_errors(ADMIN_ERRORS))
    return document
