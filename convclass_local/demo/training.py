"""Act one: the sample tenant's snapshot is dropped, a training request is queued, and the run trains,
passes its approval gates and deploys (or, on a later run, meets the champion the earlier one left)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from convclass import layout
from convclass.artifacts import METRICS_FILE, REPORT_DIR, extract_model_tar, read_metrics
from convclass.deployment import sse_kms
from convclass.events import (
    ChampionRecord,
    DataSource,
    Hosting,
    RunOptions,
    TrainingRunRequest,
    execution_name,
)
from convclass_local.demo.options import DEMO_CLASSIFIER, DEMO_LABEL_FIELD, DEMO_TENANT
from convclass_local.demo.session import DemoSession
from convclass_local.runtime import LocalRuntime


def champion_record(
    session: DemoSession, tenant: str = DEMO_TENANT, classifier: str = DEMO_CLASSIFIER
) -> ChampionRecord | None:
    """The champion record of a classifier (its model and route), if a run deployed one."""
    where = layout.ClassifierLayout(tenant, classifier)
    s3 = session.aws.client("s3")
    try:
        body = s3.get_object(Bucket=session.runtime.bucket, Key=where.champion_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return ChampionRecord.model_validate_json(body)


def champion(session: DemoSession) -> dict[str, Any] | None:
    """The model behind the sample tenant's endpoint, if an earlier run deployed one."""
    record = champion_record(session)
    if record is None:
        return None
    return {
        "endpoint": layout.endpoint_name(DEMO_TENANT, DEMO_CLASSIFIER),
        "run_id": record.run_id,
        "accuracy": record.metrics.accuracy,
    }


def train_and_deploy(session: DemoSession, observer: str) -> None:
    """Queue the training request and follow the run to its outcome; the figures go into the result."""
    result, outputs = session.result, session.runtime.outputs
    business_key = "demo-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    request = sample_request(
        _drop_snapshot(session), session.options.hyperparameters, business_key=business_key
    )
    name = execution_name(request)
    result.execution_arn = session.operator.execution_arn(name)
    session.aws.client("sqs").send_message(
        QueueUrl=outputs.require("training_queue_url"), MessageBody=request.model_dump_json()
    )
    session.say(f"training request queued → starter → execution [bold]{name}[/]")
    with session.progress:
        result.status, result.error = session.follow(result.execution_arn)
    found = session.outcome(observer)
    if found is not None:
        result.outcome = found.outcome
        result.test_accuracy, result.champion_accuracy = found.test_accuracy, found.champion_accuracy
    _report(session, name)


def endpoint_exists(session: DemoSession, endpoint: str) -> bool:
    try:
        session.aws.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    except Exception:
        return False
    return True


def _drop_snapshot(session: DemoSession) -> str:
    """Today's snapshot of the tenant's labelled conversations, dropped for the files source."""
    from convclass_local.generator import generate_emails, template_labels

    records = generate_emails(
        session.options.emails,
        seed=session.result.run,
        tenant_id=DEMO_TENANT,
        label_field=DEMO_LABEL_FIELD,
        difficulty=session.options.difficulty,
    )
    uri = drop_snapshot(session.runtime, records, source_prefix())
    labels = len({r["labels"][DEMO_LABEL_FIELD] for r in records})
    session.say(
        f"sample tenant [bold]{DEMO_TENANT}[/]: {len(records)} support emails (HTML, quoted replies, "
        f"signatures, PII) over {labels} of {len(template_labels())} intents → {uri}"
    )
    return uri


def drop_snapshot(runtime: LocalRuntime, records: Sequence[dict[str, Any]], prefix: str) -> str:
    """Drop labelled conversations as one Parquet snapshot under ``prefix`` (a files source); its URI."""
    from convclass_local.generator import write_parquet

    local = runtime.workdir / "data" / prefix / "snapshot.parquet"
    local.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(records, local)
    runtime.aws.client("s3").upload_file(
        str(local),
        runtime.bucket,
        f"{prefix}snapshot.parquet",
        ExtraArgs=sse_kms(runtime.outputs.require("kms_key_arn")),
    )
    return f"s3://{runtime.bucket}/{prefix}"


def source_prefix(tenant: str = DEMO_TENANT) -> str:
    """Where a sample tenant's exports are dropped (the files source of its requests)."""
    return f"sources/{tenant}/"


def sample_request(
    uri: str,
    hyperparameters: Mapping[str, str],
    *,
    business_key: str,
    tenant: str = DEMO_TENANT,
    classifier: str = DEMO_CLASSIFIER,
    label_field: str = DEMO_LABEL_FIELD,
    hosting: Hosting = "dedicated",
    **options: Any,
) -> TrainingRunRequest:
    """A run of a sample tenant's dropped files on the embedded AWS: both gates asked, on-demand training;
    by default the tenant's own endpoint (the demo's first acts and the local console classify through it)."""
    return TrainingRunRequest(
        tenant=tenant,
        classifier=classifier,
        label_field=label_field,
        data_source=DataSource(kind="files", uri=uri),
        options=RunOptions(
            export_approval=True,
            deploy_approval=True,
            full_export=True,
            managed_spot=False,
            training_instance_type="ml.m5.xlarge",
            hyperparameters=dict(hyperparameters),
            hosting=hosting,
            **options,
        ),
        business_key=business_key,
    )


def _report(session: DemoSession, name: str) -> None:
    """Unpack the trained model's report (curves, confusion matrix, summary) into the workdir."""
    s3, bucket = session.aws.client("s3"), session.runtime.bucket
    where = layout.ClassifierLayout(DEMO_TENANT, DEMO_CLASSIFIER)
    prefix = where.model_output_prefix(layout.run_id_for_execution(name))
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    archives = [item["Key"] for item in listing if item["Key"].endswith("model.tar.gz")]
    if not archives:
        return
    body = s3.get_object(Bucket=bucket, Key=archives[-1])["Body"].read()
    target = session.runtime.workdir / "reports" / layout.run_id_for_execution(name)
    extract_model_tar(body, target)
    report = target / REPORT_DIR
    result = session.result
    result.report = str(report if report.is_dir() else target)
    if result.test_accuracy is None and (target / METRICS_FILE).is_file():
        # A run that ended before its outcome named the figures (a rejected gate) still trained a model.
        result.test_accuracy = read_metrics(target / METRICS_FILE).accuracy
