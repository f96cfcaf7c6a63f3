"""An inbound email as a support system enqueues it for classification: one message on the inbound queue.

The body is the serving request (``convclass.serving.schemas.EmailIn``), sent unchanged to the tenant's
endpoint; the message attributes ``tenant``, ``classifier`` and ``conversation_id`` route it. The queue
refuses a message over ``events.inbound_max_message_bytes(batch_size)``; :func:`inbound_message` refuses it
first, with ``EmailTooLarge`` naming the limit, so a producer learns what to shorten before it calls SQS. It
counts the body as the Pipe will carry it (a JSON string, escaped), so a batch of messages it accepted always
fits one Step Functions input; SQS counts the raw bytes only.
"""

from __future__ import annotations

import json
from typing import Any

from convclass import layout
from convclass.errors import EmailTooLarge, InvalidInput
from convclass.events import INBOUND_ATTRIBUTES
from convclass.serving.schemas import EmailIn

_STRING = "String"


def inbound_message(
    *, entry_id: str, tenant: str, classifier: str, conversation_id: str, email: EmailIn, max_bytes: int
) -> dict[str, Any]:
    """A ``SendMessageBatch`` entry for one email; raises ``EmailTooLarge`` over ``max_bytes``.

    ``max_bytes`` is the inbound queue's ``MaximumMessageSize``; like SQS, the size counts the body and every
    attribute's name, type and value, and the body counts as escaped inside the Pipe's JSON record.
    """
    try:
        layout.validate_id(tenant, "tenant id")
        layout.validate_id(classifier, "classifier id")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    values = dict(zip(INBOUND_ATTRIBUTES, (tenant, classifier, conversation_id), strict=True))
    body = email.model_dump_json(exclude_none=True)
    escaped = json.dumps(body, ensure_ascii=False).encode()
    size = len(escaped) - 2 + sum(len(k) + len(_STRING) + len(v.encode()) for k, v in values.items())
    if size > max_bytes:
        raise EmailTooLarge(
            f"inbound email for conversation {conversation_id!r} is {size} bytes; the inbound queue "
            f"accepts at most {max_bytes} bytes per message (a whole Pipe batch must fit one Step "
            "Functions input): shorten the body or deploy a smaller inference batch size"
        )
    return {
        "Id": entry_id,
        "MessageBody": body,
        "MessageAttributes": {k: {"DataType": _STRING, "StringValue": v} for k, v in values.items()},
    }
