"""The real Pulumi entry point, run under mocks with the example stack config: what it declares."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from convclass.events import (
    DEFAULT_HOSTING,
    EMAIL_CLASSIFICATION_FAILED,
    INFERENCE_SOURCE,
    PIPE_RECORD_OVERHEAD_BYTES,
    STEP_FUNCTIONS_MAX_INPUT_BYTES,
    TrainingRunRequest,
    inbound_max_message_bytes,
)
from convclass.layout import AREAS, ClassifierLayout, endpoint_alarm_names
from convclass.stack import StackOutputs
from infra.config import ImagesConfig
from infra.mocks import REPO_ROOT, Recording
from infra.sagemaker import endpoint_log_group
from tests.infra.conftest import only

FUNCTIONS = ("plan", "export", "preprocess", "evaluate", "starter", "feedback")
COMPONENTS = (
    "Storage",
    "Images",
    "Functions",
    "SageMaker",
    "Notifications",
    "Orchestration",
    "Triggers",
    "Monitoring",
    "Feedback",
)


def _policy(recording: Recording, name: str) -> list[dict[str, Any]]:
    document = json.loads(only(recording, "aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
    return list(document["Statement"])


def _classifiers(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(t["id"], c) for t in settings["tenants"] for c in t["classifiers"]]


def test_one_component_per_concern(recording: Recording) -> None:
    declared = {r.type.split(":")[-1] for r in recording.resources if r.type.startswith("convclass:infra:")}
    assert set(COMPONENTS) <= declared


def test_stack_outputs_cover_what_the_cli_reads(recording: Recording) -> None:
    outputs = recording.stack_outputs
    assert set(StackOutputs.model_fields) <= set(outputs)
    loaded = StackOutputs.model_validate(outputs)
    assert loaded.require("training_state_machine_arn").endswith(":stateMachine:convclass-dev-training")
    assert loaded.require("inbound_queue_url").endswith("/convclass-dev-inbound-emails")
    assert set(outputs["repository_urls"]) == {"lambda", "training", "serving"}


def test_lambdas_run_one_image_by_digest_with_configured_sizes(
    recording: Recording, settings: dict[str, Any]
) -> None:
    functions = {r.inputs["name"]: r for r in recording.of_type("aws:lambda/function:Function")}
    assert set(functions) == {f"convclass-dev-{f}" for f in FUNCTIONS}
    image = recording.stack_outputs["image_uris"]["lambda"]
    assert image.endswith("@" + settings["images"]["lambdaDigest"])
    for function in FUNCTIONS:
        declared = functions[f"convclass-dev-{function}"].inputs
        assert declared["packageType"] == "Image"
        assert declared["imageUri"] == image
        assert declared["imageConfig"]["commands"] == [f"functions.{function}.handler.handler"]
        assert declared["tracingConfig"] == {"mode": "Active"}
        assert declared["loggingConfig"]["logGroup"] == f"/aws/lambda/convclass-dev-{function}"
        assert declared["kmsKeyArn"] == recording.stack_outputs["kms_key_arn"]
        configured = settings["functions"].get(function)
        if configured:
            assert declared["memorySize"] == configured["memoryMb"]
            assert declared["timeout"] == configured["timeoutSeconds"]
    assert functions["convclass-dev-preprocess"].inputs["ephemeralStorage"] == {"size": 4096}
    # Each function has a role of its own.
    assert len({f.inputs["role"] for f in functions.values()}) == len(FUNCTIONS)


def test_function_roles_reach_only_their_area_of_the_bucket(recording: Recording) -> None:
    def objects(policy: str, sid: str) -> set[str]:
        return {
            res.split("/", 1)[1]
            for s in _policy(recording, policy)
            if s["Sid"] == sid
            for res in s["Resource"]
        }

    assert objects("functions-preprocess-policy", "DataRead") == {
        "tenants/*/classifiers/*/exports/*",
        "tenants/*/classifiers/*/feedback/confirmations/*",  # agents' confirmed labels
    }
    # Preprocess writes the dataset and the run's training history (kept with the run's export).
    assert objects("functions-preprocess-policy", "DataWrite") == {
        "tenants/*/classifiers/*/datasets/*",
        "tenants/*/classifiers/*/exports/*/history/*",
    }
    # The export records the export gate's answer (consent.json); a refusal may drop the watermark, only it.
    assert objects("functions-export-policy", "DataWrite") == {
        "tenants/*/classifiers/*/exports/*",
        "tenants/*/classifiers/*/consent.json",
    }
    assert objects("functions-export-policy", "DropHistory") == {
        "tenants/*/classifiers/*/exports/watermark.json"
    }
    assert not objects("functions-evaluate-policy", "DataWrite")
    # Functions that read keys which may not exist yet (watermark, manifests, champion.json) may list the
    # bucket without a prefix condition, so a missing key reads as 404 NoSuchKey on AWS, not 403.
    for function in ("export", "preprocess", "evaluate"):
        (listing,) = [s for s in _policy(recording, f"functions-{function}-policy") if s["Sid"] == "DataList"]
        assert listing["Action"] == ["s3:ListBucket"]
        assert "Condition" not in listing
        assert all("/" not in res.split(":::", 1)[1] for res in listing["Resource"])
    assert [s["Sid"] for s in _policy(recording, "functions-plan-policy")] == [
        "OwnLogs",
        "XRayTracing",
        "DecryptEnvironment",
    ]
    sagemaker = objects("sagemaker-execution-policy", "DataWrite")
    assert sagemaker == {"tenants/*/classifiers/*/models/*", "tenants/*/classifiers/*/checkpoints/*"}
    assert not any("exports" in key for key in objects("sagemaker-execution-policy", "DataRead"))


def test_starter_may_only_start_the_training_workflow(recording: Recording) -> None:
    statements = {s["Sid"]: s for s in _policy(recording, "triggers-starter-policy")}
    assert statements["StartTrainingRuns"]["Action"] == ["states:StartExecution"]
    assert statements["StartTrainingRuns"]["Resource"] == [
        recording.stack_outputs["training_state_machine_arn"]
    ]
    starter = only(recording, "aws:lambda/function:Function", "triggers-starter-function")
    assert (
        starter.inputs["environment"]["variables"]["CONVCLASS_TRAINING_STATE_MACHINE_ARN"]
        == recording.stack_outputs["training_state_machine_arn"]
    )
    mapping = [
        m
        for m in recording.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
        if m.name == "triggers-starter-source"
    ]
    assert len(mapping) == 1
    assert mapping[0].inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping[0].inputs["eventSourceArn"].endswith(":convclass-dev-training-requests")


def test_schedules_send_valid_requests_with_a_per_firing_business_key(
    recording: Recording, settings: dict[str, Any]
) -> None:
    scheduled = [(t, c) for t, c in _classifiers(settings) if c.get("schedule")]
    schedules = {s.inputs["name"]: s.inputs for s in recording.of_type("aws:scheduler/schedule:Schedule")}
    assert set(schedules) == {f"retrain-{t}-{c['id']}" for t, c in scheduled}
    for tenant, classifier in scheduled:
        schedule = schedules[f"retrain-{tenant}-{classifier['id']}"]
        assert schedule["scheduleExpression"] == classifier["schedule"]
        assert schedule["target"]["arn"].endswith(":convclass-dev-training-requests")
        assert schedule["target"]["deadLetterConfig"]["arn"].endswith(":convclass-dev-undelivered-events")
        request = TrainingRunRequest.model_validate_json(schedule["target"]["input"])
        assert (request.tenant, request.classifier) == (tenant, classifier["id"])
        assert request.business_key == "scheduled-<aws.scheduler.scheduled-time>"
        assert request.options.export_approval is classifier["exportApproval"]
        assert request.options.training_instance_type == settings["training"]["instanceType"]


def test_train_rule_feeds_the_training_queue_and_only_its_rule_may_send(recording: Recording) -> None:
    rule = only(recording, "aws:cloudwatch/eventRule:EventRule", "triggers-train-rule")
    assert json.loads(rule.inputs["eventPattern"])["detail-type"] == ["Train Classifier Requested"]
    target = only(recording, "aws:cloudwatch/eventTarget:EventTarget", "triggers-train-target")
    assert target.inputs["arn"].endswith(":convclass-dev-training-requests")
    assert target.inputs["inputPath"] == "$.detail"
    policy = json.loads(
        only(recording, "aws:sqs/queuePolicy:QueuePolicy", "triggers-training-queue-policy").inputs["policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == rule.outputs["arn"]


def test_inbound_emails_reach_the_express_workflow_through_a_synchronous_pipe(recording: Recording) -> None:
    (pipe,) = recording.of_type("aws:pipes/pipe:Pipe")
    assert pipe.inputs["target"] == recording.stack_outputs["inference_state_machine_arn"]
    assert pipe.inputs["targetParameters"]["stepFunctionStateMachineParameters"]["invocationType"] == (
        "REQUEST_RESPONSE"
    )
    assert pipe.inputs["source"].endswith(":convclass-dev-inbound-emails")
    machines = {m.inputs["name"]: m.inputs for m in recording.of_type("aws:sfn/stateMachine:StateMachine")}
    assert machines["convclass-dev-inference"]["type"] == "EXPRESS"
    assert machines["convclass-dev-training"]["type"] == "STANDARD"
    statements = {s["Sid"]: s for s in _policy(recording, "triggers-inbound-pipe-policy")}
    assert statements["ClassifyBatch"]["Action"] == ["states:StartSyncExecution"]


def test_every_queue_and_its_dlq_redrive(recording: Recording) -> None:
    queues = {q.inputs["name"]: q for q in recording.of_type("aws:sqs/queue:Queue")}
    for name in ("convclass-dev-training-requests", "convclass-dev-inbound-emails"):
        redrive = json.loads(queues[name].inputs["redrivePolicy"])
        assert redrive["deadLetterTargetArn"] == queues[f"{name}-dlq"].outputs["arn"]


def test_endpoint_alarms_exist_under_the_names_blue_green_rollback_uses(
    recording: Recording, settings: dict[str, Any]
) -> None:
    alarms = {a.inputs["name"]: a.inputs for a in recording.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    log_groups = {g.inputs["name"] for g in recording.of_type("aws:cloudwatch/logGroup:LogGroup")}
    hosting = {(t, c["id"]): c.get("hosting", DEFAULT_HOSTING) for t, c in _classifiers(settings)}
    assert set(hosting.values()) == {"dedicated", "shared"}
    for (tenant, classifier), mode in hosting.items():
        for name in endpoint_alarm_names(tenant, classifier):
            # A shared classifier has no endpoint of its own: the shared endpoint's alarms cover it.
            assert (name in alarms) == (mode == "dedicated")
            if mode == "dedicated":
                assert alarms[name]["namespace"] == "AWS/SageMaker"
                assert alarms[name]["alarmActions"] == [recording.stack_outputs["notifications_topic_arn"]]
        assert (endpoint_log_group(tenant, classifier) in log_groups) == (mode == "dedicated")
    latency = alarms[endpoint_alarm_names("acme", "intent")[1]]
    assert latency["metricName"] == "ModelLatency"
    assert latency["threshold"] == settings["serving"]["latencyAlarmP90Ms"] * 1000
    for dlq in ("training-requests", "inbound-emails", "undelivered-events"):
        assert (
            alarms[f"convclass-dev-{dlq}-dlq-not-empty"]["metricName"] == "ApproximateNumberOfMessagesVisible"
        )
    for workflow in ("training", "inference"):
        for metric in ("executionsfailed", "executionstimedout"):
            assert f"convclass-dev-{workflow}-{metric}" in alarms


def test_lifecycle_rules_cover_every_configured_classifier(
    recording: Recording, settings: dict[str, Any]
) -> None:
    (lifecycle,) = recording.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    prefixes = {
        rule["filter"]["prefix"]: rule for rule in lifecycle.inputs["rules"] if "prefix" in rule["filter"]
    }
    for tenant, classifier in _classifiers(settings):
        layout = ClassifierLayout(tenant, classifier["id"])
        for area in AREAS:
            assert layout.area_prefix(area) in prefixes
        exports = prefixes[layout.area_prefix("exports")]
        assert exports["expiration"]["days"] == settings["storage"]["exportRetentionDays"]
        assert "expiration" not in prefixes[layout.area_prefix("models")]


def test_dashboard_shows_the_pipeline(recording: Recording) -> None:
    (dashboard,) = recording.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert {"Training runs", "Inference batches", "Queue backlog", "Endpoint 5xx"} <= set(titles)
    rendered = json.dumps(body)
    assert recording.stack_outputs["training_state_machine_arn"] in rendered
    assert "convclass-dev-inbound-emails-dlq" in rendered


def test_log_groups_are_the_ones_the_services_write_to(recording: Recording) -> None:
    groups = {g.inputs["name"] for g in recording.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert {f"/aws/lambda/convclass-dev-{f}" for f in FUNCTIONS} <= groups
    assert "/aws/sagemaker/TrainingJobs" in groups
    machines = recording.of_type("aws:sfn/stateMachine:StateMachine")
    for machine in machines:
        destination = machine.inputs["loggingConfiguration"]["logDestination"]
        assert re.fullmatch(
            r"arn:aws:logs:eu-west-1:\d{12}:log-group:/aws/vendedlogs/states/.+:\*", destination
        )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_deployed_command_has_a_handler(function: str) -> None:
    assert (REPO_ROOT / "functions" / function / "handler.py").is_file()


@pytest.mark.parametrize("kind", ["lambda", "training", "serving"])
def test_default_dockerfiles_of_image_builds_exist(kind: str) -> None:
    images = ImagesConfig(build=True, build_tag="3f2c1ab")
    assert (REPO_ROOT / images.context / getattr(images, f"{kind}_dockerfile")).is_file()


def test_a_full_pipe_batch_of_the_largest_inbound_emails_fits_one_step_functions_input(
    recording: Recording,
) -> None:
    (pipe,) = recording.of_type("aws:pipes/pipe:Pipe")
    batch_size = pipe.inputs["sourceParameters"]["sqsQueueParameters"]["batchSize"]
    queues = {q.inputs["name"]: q.inputs for q in recording.of_type("aws:sqs/queue:Queue")}
    largest = queues["convclass-dev-inbound-emails"]["maxMessageSize"]
    assert largest == inbound_max_message_bytes(batch_size)
    assert batch_size * (largest + PIPE_RECORD_OVERHEAD_BYTES) <= STEP_FUNCTIONS_MAX_INPUT_BYTES


def test_emails_that_could_not_be_classified_are_archived_and_alarmed(recording: Recording) -> None:
    pattern = {"source": [INFERENCE_SOURCE], "detail-type": [EMAIL_CLASSIFICATION_FAILED]}
    (bus,) = recording.of_type("aws:cloudwatch/eventBus:EventBus")
    (archive,) = recording.of_type("aws:cloudwatch/eventArchive:EventArchive")
    assert archive.inputs["eventSourceArn"] == bus.outputs["arn"]
    assert json.loads(archive.inputs["eventPattern"]) == pattern
    assert archive.inputs["kmsKeyIdentifier"] == recording.stack_outputs["kms_key_arn"]
    assert archive.inputs["retentionDays"] > 0
    rules = {r.inputs["name"]: r.inputs for r in recording.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert json.loads(rules["convclass-dev-failed-emails"]["eventPattern"]) == pattern
    alarms = {a.inputs["name"]: a.inputs for a in recording.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    alarm = alarms["convclass-dev-inference-emails-not-classified"]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Events", "MatchedEvents")
    assert alarm["dimensions"] == {
        "EventBusName": bus.outputs["name"],
        "RuleName": "convclass-dev-failed-emails",
    }
    assert alarm["threshold"] == 0
    assert alarm["alarmActions"] == [recording.stack_outputs["notifications_topic_arn"]]
    (key,) = recording.of_type("aws:kms/key:Key")
    statements = {st["Sid"]: st for st in json.loads(key.inputs["policy"])["Statement"]}
    archives = statements["EventBridgeArchives"]
    assert archives["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(archives["Action"]) == {
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    }
    context = archives["Condition"]["ArnLike"]["kms:EncryptionContext:aws:events:event-bus:arn"]
    assert context.endswith(":event-bus/*")
