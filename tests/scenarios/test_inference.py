"""Nothing lost in inference: the local stack's Pipe and inference workflow, with the real serving app behind
the endpoint, under transient faults, a broken endpoint, a redelivery and the largest emails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from inference_scenarios import (
    InferenceStage,
    failing_endpoint,
    inference_stage,
    largest_emails,
    redelivered_message,
    transient_endpoint,
)
from scenario_support import ScenarioCounts

from convclass.deployment import INBOUND_BATCH_SIZE, INBOUND_MAX_RECEIVE_COUNT
from convclass.events import inbound_max_message_bytes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("embedded-aws")]


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[InferenceStage]:
    with inference_stage(tmp_path) as running:
        yield running


def test_an_endpoint_that_fails_transiently_then_recovers_loses_nothing(
    stage: InferenceStage, totals: ScenarioCounts
) -> None:
    counts = transient_endpoint(stage, n=12)
    totals.add_from(counts)
    assert counts.emails_sent == 13
    assert counts.emails_classified == 12
    assert counts.emails_failed == 1  # the email the serving schema refuses: answered, final
    assert counts.emails_in_dlq == 0
    assert counts.emails_lost == 0
    assert counts.duplicate_events == 0
    # Every injected fault was answered by a retry inside the workflow.
    assert stage.endpoints.faults == type(stage.endpoints.faults)()


def test_an_endpoint_that_keeps_failing_sends_its_emails_to_the_dlq(
    stage: InferenceStage, totals: ScenarioCounts
) -> None:
    counts = failing_endpoint(stage, n=4)
    totals.add_from(counts)
    assert counts.emails_in_dlq == 4
    assert counts.emails_classified == counts.emails_failed == 0
    assert counts.emails_lost == 0
    assert counts.duplicate_events == 0
    # Each message was tried once per receive before SQS moved it.
    assert stage.endpoints.invocations >= 4 * INBOUND_MAX_RECEIVE_COUNT


def test_a_redelivered_message_publishes_no_duplicate_by_event_id(
    stage: InferenceStage, totals: ScenarioCounts
) -> None:
    counts = redelivered_message(stage, n=3)
    totals.add_from(counts)
    assert counts.redelivered_events >= 1  # the redelivery happened, and published again
    assert counts.emails_classified == 3
    assert counts.duplicate_events == 0
    assert counts.emails_lost == 0


def test_a_full_batch_of_the_largest_emails_fits_and_larger_ones_are_refused(
    stage: InferenceStage, totals: ScenarioCounts
) -> None:
    counts = largest_emails(stage)
    totals.add_from(counts)
    assert counts.emails_sent == INBOUND_BATCH_SIZE
    assert counts.emails_classified == INBOUND_BATCH_SIZE
    assert counts.emails_lost == counts.emails_in_dlq == 0

    limit = inbound_max_message_bytes(INBOUND_BATCH_SIZE)
    with pytest.raises(ClientError, match=f"shorter than {limit} bytes"):
        stage.client("sqs").send_message(
            QueueUrl=stage.runtime.outputs.require("inbound_queue_url"),
            MessageBody=json.dumps({"body": "x" * limit}),
        )
