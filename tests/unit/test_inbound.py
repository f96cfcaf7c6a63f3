"""The producer side of the inbound queue: one message per email, refused before SQS when it cannot fit."""

from __future__ import annotations

import json

import pytest

from convclass.errors import EmailTooLarge, InvalidInput
from convclass.events import (
    PIPE_RECORD_OVERHEAD_BYTES,
    STEP_FUNCTIONS_MAX_INPUT_BYTES,
    inbound_max_message_bytes,
)
from convclass.inbound import inbound_message
from convclass.serving.schemas import INVOCATION_REQUEST, EmailIn

LIMIT = inbound_max_message_bytes(10)


def _message(body: str, **overrides: str) -> dict[str, object]:
    ids = {"tenant": "acme", "classifier": "support", "conversation_id": "c-1", **overrides}
    return inbound_message(entry_id="0", email=EmailIn(body=body, subject="hi"), max_bytes=LIMIT, **ids)


def test_the_message_body_is_a_valid_serving_request_and_attributes_route_it() -> None:
    message = _message("<p>where is my order?</p>")
    assert INVOCATION_REQUEST.validate_json(str(message["MessageBody"])) == EmailIn(
        body="<p>where is my order?</p>", subject="hi"
    )
    assert message["MessageAttributes"] == {
        "tenant": {"DataType": "String", "StringValue": "acme"},
        "classifier": {"DataType": "String", "StringValue": "support"},
        "conversation_id": {"DataType": "String", "StringValue": "c-1"},
    }


@pytest.mark.parametrize("batch_size", [1, 2, 5, 10])
def test_a_full_batch_of_the_largest_messages_fits_one_step_functions_input(batch_size: int) -> None:
    largest = inbound_max_message_bytes(batch_size)
    assert batch_size * (largest + PIPE_RECORD_OVERHEAD_BYTES) <= STEP_FUNCTIONS_MAX_INPUT_BYTES


def test_an_email_over_the_limit_is_refused_with_the_limit_named() -> None:
    with pytest.raises(EmailTooLarge, match=f"at most {LIMIT} bytes"):
        _message("x" * LIMIT)


def test_the_body_counts_as_the_pipe_escapes_it() -> None:
    # Quotes are escaped twice on the way (serving JSON, then the Pipe's record): 1 character costs 4 bytes.
    quotes = '"' * (LIMIT // 3)
    assert len(json.dumps({"body": quotes}).encode()) < LIMIT
    with pytest.raises(EmailTooLarge):
        _message(quotes)
    assert _message('"' * (LIMIT // 5))["Id"] == "0"


def test_ids_are_checked_before_anything_is_sent() -> None:
    with pytest.raises(InvalidInput, match="tenant id"):
        _message("hello", tenant="ACME/../other")
