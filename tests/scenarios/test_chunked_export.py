"""A big tenant's export: planned into chunks, exported by the Map with the real export handler, finalized,
then preprocessed from the chunked run manifest — and trained on exactly what the single-task export gives."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from pipeline_data import CLASSIFIER, PAST, conversation, drop, grant, s3

from convclass import layout
from convclass.export.manifest import ExportManifest, Watermark
from convclass_local.workflow_lab import BUCKET, REGION, World, request
from statemachine.history import ExecutionRecord, wait_for
from statemachine.training import names as t

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("scenarios-chunked-export"),
    pytest.mark.usefixtures("real_engine_hooks"),
]

EXPORT_FUNCTION = "convclass-export"
SIZE_RULE = "CONVCLASS_EXPORT_MAP_MIN_RECORDS"


@contextmanager
def every_tenant_is_big() -> Iterator[None]:
    """The export function's size rule set to 0: a window of several chunks goes through the Map."""
    lam = boto3.client("lambda", region_name=REGION)
    current = lam.get_function_configuration(FunctionName=EXPORT_FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=EXPORT_FUNCTION, Environment={"Variables": {**current, SIZE_RULE: "0"}}
    )
    try:
        yield
    finally:
        lam.update_function_configuration(FunctionName=EXPORT_FUNCTION, Environment={"Variables": current})


def rows(tenant: str) -> list[dict[str, Any]]:
    """45 conversations changed over 30 years, so the full export's chunks hold different conversations."""
    return [conversation(tenant, i, PAST - timedelta(days=250 * i)) for i in range(45)]


def run(world: World, tenant: str) -> ExecutionRecord:
    grant(tenant)
    drop(tenant, "history", rows(tenant))
    name = f"{tenant}-support-1"
    execution = world.start(
        world.training_arn, name, request(tenant, min_examples_per_label=3).model_dump(mode="json")
    )
    return wait_for(world.client("stepfunctions"), execution, timeout_s=240)


def splits(tenant: str) -> dict[str, dict[str, str]]:
    """split → {conversation id → label} of the tenant's first run."""
    where = layout.ClassifierLayout(tenant, CLASSIFIER)
    run_id = layout.run_id_for_execution(f"{tenant}-support-1")
    found: dict[str, dict[str, str]] = {}
    for split in layout.SPLITS:
        data = s3().get_object(Bucket=BUCKET, Key=where.split_key(run_id, split))["Body"].read()
        table = pq.read_table(io.BytesIO(data), columns=["conversation_id", "label"]).to_pylist()
        found[split] = {row["conversation_id"]: row["label"] for row in table}
    return found


def manifest(tenant: str) -> ExportManifest:
    where = layout.ClassifierLayout(tenant, CLASSIFIER)
    key = where.export_manifest_key(layout.run_id_for_execution(f"{tenant}-support-1"))
    return ExportManifest.model_validate_json(s3().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def watermark(tenant: str) -> Watermark:
    key = layout.ClassifierLayout(tenant, CLASSIFIER).watermark_key
    return Watermark.model_validate_json(s3().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_chunked_export_trains_on_the_same_set_as_the_single_task(world: World) -> None:
    whole = run(world, "whole")  # the default size rule: a tenant without history is small
    with every_tenant_is_big():
        chunky = run(world, "chunky")

    assert whole.status == "SUCCEEDED", (whole.error, whole.cause)
    assert chunky.status == "SUCCEEDED", (chunky.error, chunky.cause)
    assert t.EXPORT in whole.entered
    assert t.EXPORT_CHUNKS not in whole.entered
    assert manifest("whole").chunks == 1
    assert t.EXPORT not in chunky.entered
    chunks = chunky.entered.count(t.EXPORT_CHUNK)
    assert chunks >= 3
    assert chunky.entered.index(t.FINALIZE_EXPORT) < chunky.entered.index(t.PREPROCESS)
    combined = manifest("chunky")
    assert combined.chunks == chunks
    assert combined.counts.exported == manifest("whole").counts.exported == 45
    # The watermark moved at CommitHistory, to the end of the planned window.
    assert watermark("chunky").value == combined.window.end
    # Same conversations with the same labels, and splits of the same sizes. Which conversation lands in
    # which split follows the order the parts are read in (the builder's seeded shuffle), and the chunked
    # run reads its parts in window order.
    chunked, single = splits("chunky"), splits("whole")
    assert union(chunked) == union(single)
    assert len(union(single)) == 45
    assert {name: len(rows) for name, rows in chunked.items()} == {
        name: len(rows) for name, rows in single.items()
    }


def union(found: dict[str, dict[str, str]]) -> dict[str, str]:
    return {cid: label for rows in found.values() for cid, label in rows.items()}
