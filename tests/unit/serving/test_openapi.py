"""The scoring routes' schema says what the item check accepts, policy by policy."""

import json

import jsonschema
import orjson
import pytest

from flywheel.policy import load_policy
from flywheel.records import ItemError, ItemValidator
from flywheel.settings import Settings
from serving.openapi import item_schemas, request_schemas, response_schemas

SPAM_ITEM = {
    "item_id": "a",
    "text": "hi",
    "account_age_days": 3,
    "links": 0,
    "prior_reports": None,
    "messages_last_hour": 1,
    "surface": "dm",
    "country": "US",
}
SCAM_ONLY = {"payment_requests": 0, "contacts_messaged": 1}


@pytest.fixture(scope="module")
def check():
    """Validate a request against the ScoreRequest schema, and the same with the item check."""
    policies = [load_policy("spam"), load_policy("scam")]
    settings = Settings(max_text_chars=100)
    schemas = {**item_schemas(policies, settings), **request_schemas(policies, settings)}
    schemas |= response_schemas(policies)
    document = {"components": {"schemas": schemas}}
    by_name = {p.name: p for p in policies}

    def both(request: dict) -> tuple[bool, bool]:
        validator = jsonschema.Draft202012Validator(
            {**schemas["ScoreRequest"], "components": document["components"]}
        )
        schema_ok = validator.is_valid(request)
        names = request.get("policies") or list(by_name)
        sent = orjson.loads(json.dumps(request))  # as the server reads the body
        try:
            ItemValidator([by_name[n] for n in names], 100)(sent["item"])
            server_ok = True
        except ItemError:
            server_ok = False
        return schema_ok, server_ok

    return both


@pytest.mark.parametrize(
    ("request_", "accepted"),
    [
        ({"item": SPAM_ITEM, "policies": ["spam"]}, True),
        ({"item": SPAM_ITEM}, False),  # every served policy: scam's fields are missing
        ({"item": {**SPAM_ITEM, **SCAM_ONLY}}, True),
        ({"item": {**SPAM_ITEM, **SCAM_ONLY}, "policies": None}, True),
        ({"item": {**SPAM_ITEM, **SCAM_ONLY}, "policies": ["scam"]}, True),
        ({"item": SPAM_ITEM, "policies": ["scam"]}, False),
        ({"item": {**SPAM_ITEM, "links": "3"}, "policies": ["spam"]}, False),
        ({"item": {**SPAM_ITEM, "links": True}, "policies": ["spam"]}, False),
        ({"item": {**SPAM_ITEM, "surface": 7}, "policies": ["spam"]}, True),
        ({"item": {**SPAM_ITEM, "text": "x" * 101}, "policies": ["spam"]}, False),
        ({"item": {**SPAM_ITEM, "item_id": " "}, "policies": ["spam"]}, False),
        ({"item": {**SPAM_ITEM, "item_id": 12}, "policies": ["spam"]}, True),
        ({"item": {**SPAM_ITEM, "extra": [1]}, "policies": ["spam"]}, True),
        # fields of a policy not asked for are not looked at, whatever they hold
        ({"item": {**SPAM_ITEM, "payment_requests": {}}, "policies": ["spam"]}, True),
        ({"item": {**SPAM_ITEM, **SCAM_ONLY, "links": "x"}, "policies": ["scam"]}, True),
        # integers wider than 64 bits reach the check as floats
        ({"item": {**SPAM_ITEM, "item_id": 2**64}, "policies": ["spam"]}, False),
    ],
)
def test_the_schema_and_the_item_check_agree(check, request_, accepted):
    assert check(request_) == (accepted, accepted)
