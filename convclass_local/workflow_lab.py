"""A workflow lab: one in-process moto account with the rendered workflows deployed, for path checks.

It deploys what the workflows refer to (functions, data bucket, event bus with a rule that captures every
convclass event into a queue) and runs executions with the engine hooks of :mod:`convclass_local.moto_shims`:
the plan and evaluate functions run in process, the other functions must be mocked (Step Functions Local mock
config). The path tests and ``benchmarks/bench_statemachine.py`` share it. Call inside ``mock_aws``.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

from convclass.deployment import DATA_BUCKET_ENV
from convclass.events import TrainingRunRequest
from convclass.steps.plan import plan_run
from convclass_local import moto_shims
from convclass_local.lambdas import invoke_handler
from statemachine import PipelineSettings, render_inference_workflow, render_training_pipeline
from statemachine.history import ExecutionRecord, wait_for
from statemachine.mockconfig import training_mock_config
from statemachine.resources import InferenceResources, TrainingPipelineResources

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "convclass-data-test"
BUS = "convclass"
TRAINING = "convclass-training"
SHORT_APPROVALS = "convclass-training-short-approvals"
INFERENCE = "convclass-inference"
SHARED_ENDPOINT = "convclass-shared"
HANDLERS = {
    "plan": "functions.plan.handler.handler",
    "export": "functions.export.handler.handler",
    "preprocess": "functions.preprocess.handler.handler",
    "evaluate": "functions.evaluate.handler.handler",
}
#: Real handlers the path tests run in process; the others must be mocked by the test case.
REAL_FUNCTIONS = {"plan", "evaluate"}

for _name in ("moto", "botocore", "boto3", "urllib3", "werkzeug"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def dispatch(invocation: moto_shims.LambdaInvocation) -> tuple[str, bool]:
    key = invocation.function_name.removeprefix("convclass-")
    if key not in REAL_FUNCTIONS:
        return json.dumps({"errorType": "NotMocked", "errorMessage": f"{key} must be mocked here"}), True
    return run_handler(invocation)


def run_handler(invocation: moto_shims.LambdaInvocation) -> tuple[str, bool]:
    """Run the function's real handler in process (what scenarios use for every function)."""
    return invoke_handler(
        invocation.handler,
        invocation.event,
        function_name=invocation.function_name,
        function_arn=invocation.function_arn,
        environment=invocation.environment,
        memory_mb=invocation.memory_mb,
        timeout_s=invocation.timeout_s,
    )


def hooks(**changes: Any) -> moto_shims.EngineHooks:
    """Hooks for path tests: real plan/evaluate in process, Wait and retry back-off compressed 1000×."""
    base = moto_shims.EngineHooks(lambda_dispatch=dispatch, time_scale=0.0001, sync_poll_seconds=0.005)
    return moto_shims.EngineHooks(**{**base.__dict__, **changes})


def request(tenant: str, **options: Any) -> TrainingRunRequest:
    return TrainingRunRequest(
        tenant=tenant,
        classifier="support",
        label_field="intent",
        data_source={"kind": "files", "uri": f"s3://{BUCKET}/drop/{tenant}/"},
        options=options,
    )


@dataclass
class World:
    """Clients and resources of one moto account, plus every event published on the bus."""

    training_arn: str
    short_approvals_arn: str
    inference_arn: str
    queue_url: str
    resources: TrainingPipelineResources
    captured: list[dict[str, Any]] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        """One client per service: creating a client reads the whole environment, which an in-process Lambda
        invocation on the engine's thread may be patching at that moment."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=REGION)
        return self._clients[service]

    def start(self, arn: str, name: str, payload: Any, case: str | None = None) -> str:
        target = f"{arn}#{case}" if case else arn
        sfn = self.client("stepfunctions")
        return str(
            sfn.start_execution(stateMachineArn=target, name=name, input=json.dumps(payload))["executionArn"]
        )

    def run_training(
        self,
        req: TrainingRunRequest,
        name: str,
        case: str | None = None,
        *,
        arn: str | None = None,
        polls_to_in_service: int = 3,
    ) -> tuple[str, ExecutionRecord]:
        """One training execution; with ``case``, the mock config of that path for this request's plan."""
        arn = arn or self.training_arn
        if case:
            self.mock(req, name, arn, polls_to_in_service=polls_to_in_service)
        execution = self.start(arn, name, req.model_dump(mode="json"), case)
        return execution, wait_for(self.client("stepfunctions"), execution, timeout_s=30)

    def mock(
        self,
        req: TrainingRunRequest,
        name: str,
        arn: str,
        extra_cases: dict[str, dict[str, str]] | None = None,
        *,
        polls_to_in_service: int = 3,
    ) -> None:
        """Make the engine answer mocked states with the path catalogue built for this run's plan."""
        machine = arn.rsplit(":", 1)[-1]
        plan = plan_run(
            req, execution_name=name, bucket=BUCKET, shared_endpoint=self.resources.shared_endpoint_name
        )
        config = training_mock_config(machine, plan, polls_to_in_service=polls_to_in_service)
        config["StateMachines"][machine]["TestCases"].update(extra_cases or {})
        moto_shims.update(mock_config=moto_shims.MockConfig(config))

    def events(self, *, execution: str | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
        """Events published so far (EventBridge rule → SQS), filtered by execution or tenant."""
        sqs = self.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                self.captured.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [
            event
            for event in self.captured
            if (execution is None or event["detail"].get("execution") == execution)
            and (tenant is None or event["detail"].get("tenant") == tenant)
        ]

    def wait_for_event(self, detail_type: str, *, execution: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events(execution=execution):
                if event["detail-type"] == detail_type:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {detail_type!r} event for {execution}")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# convclass functions run in process in tests\n")
    return buffer.getvalue()


def build_world() -> World:
    """Create the resources the workflows refer to; call inside ``mock_aws``."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="convclass-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    lam = boto3.client("lambda", region_name=REGION)
    arns = {
        key: lam.create_function(
            FunctionName=f"convclass-{key}",
            Runtime="python3.12",
            Role=role,
            Handler=handler,
            Code={"ZipFile": _zip()},
            Timeout=60,
            Environment={"Variables": {DATA_BUCKET_ENV: BUCKET}},
        )["FunctionArn"]
        for key, handler in HANDLERS.items()
    }
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=BUS)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="convclass-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": "convclass."}]})
    )
    events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
    resources = TrainingPipelineResources(
        plan_function_arn=arns["plan"],
        export_function_arn=arns["export"],
        preprocess_function_arn=arns["preprocess"],
        evaluate_function_arn=arns["evaluate"],
        data_bucket=BUCKET,
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555",
        sagemaker_role_arn=role,
        training_image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/convclass-train:test",
        serving_image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/convclass-serve:test",
        event_bus_name=BUS,
        shared_endpoint_name=SHARED_ENDPOINT,
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)

    def machine(name: str, definition: dict[str, Any], kind: str) -> str:
        created = sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=role, type=kind
        )
        return str(created["stateMachineArn"])

    local = PipelineSettings(export_map="inline")  # moto's engine has no Distributed Map
    short = PipelineSettings(approval_timeout_seconds=2, export_map="inline")
    return World(
        training_arn=machine(TRAINING, render_training_pipeline(resources, local), "STANDARD"),
        short_approvals_arn=machine(SHORT_APPROVALS, render_training_pipeline(resources, short), "STANDARD"),
        inference_arn=machine(
            INFERENCE, render_inference_workflow(InferenceResources(BUS, BUCKET, SHARED_ENDPOINT)), "EXPRESS"
        ),
        queue_url=queue_url,
        resources=resources,
    )
