"""A whole convclass deployment on one machine: embedded AWS, the stack's resources and the engines behind
them.

``LocalRuntime`` starts moto in server mode, connects the engine hooks of :mod:`convclass_local.moto_shims` to
the real components (Lambda handlers in-process, the training entrypoint as a local process, the serving app
per endpoint), creates the stack, restores the previous run's data, and runs the inbound-email Pipe and the
queues' event source mappings (training requests → starter, feedback events → feedback function). Closing
it stops every execution, process and thread it started and saves the data for the next run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from convclass.deployment import INBOUND_BATCH_SIZE
from convclass.feedback.policy import RetrainingPolicy
from convclass.layout import stack_resource_name
from convclass.stack import StackOutputs
from convclass_local import moto_shims, state
from convclass_local.archive import InferenceArchive
from convclass_local.embedded import EmbeddedAws
from convclass_local.endpoints import EndpointUnavailable, LocalEndpointHost
from convclass_local.lambdas import invoke_handler, routed_output
from convclass_local.pipes import InboundPipe, QueueFunctionSource
from convclass_local.stack import EVENT_SOURCES, STACK, deploy, function_name
from convclass_local.training import LocalTrainingRunner, LogListener, MetricDefinition
from statemachine import PipelineSettings
from statemachine.training.settings import LOCAL_ENDPOINT_POLL_SECONDS

OUTPUTS_FILE = "stack-outputs.json"
STATE_DIR = "state"
_log = logging.getLogger(__name__)


@dataclass
class LocalRuntime:
    """Everything under ``workdir``; use as a context manager (``close`` is safe to call more than once)."""

    workdir: Path
    training_listener: LogListener | None = None
    persist: bool = True
    endpoint_poll_seconds: int = LOCAL_ENDPOINT_POLL_SECONDS
    #: The stack config's ``feedback:`` section: ``tenant/classifier`` → retraining policy.
    feedback_policies: dict[str, RetrainingPolicy] = field(default_factory=dict)
    aws: EmbeddedAws = field(default_factory=EmbeddedAws)
    outputs: StackOutputs = field(default_factory=StackOutputs)
    restored_objects: int = 0
    _runner: LocalTrainingRunner | None = field(default=None, repr=False)
    _endpoints: LocalEndpointHost | None = field(default=None, repr=False)
    _pipe: InboundPipe | None = field(default=None, repr=False)
    _sources: list[QueueFunctionSource] = field(default_factory=list, repr=False)
    _archive: InferenceArchive | None = field(default=None, repr=False)
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _restored: bool = field(default=False, repr=False)

    @property
    def outputs_path(self) -> Path:
        return self.workdir / OUTPUTS_FILE

    @property
    def pipeline_settings(self) -> PipelineSettings:
        """The training workflow's knobs: the deployment's, as the local run changes them."""
        return PipelineSettings().for_local_run(endpoint_poll_seconds=self.endpoint_poll_seconds)

    @property
    def endpoints(self) -> LocalEndpointHost:
        if self._endpoints is None:
            raise RuntimeError("the local runtime is not started")
        return self._endpoints

    @property
    def inbound_pipe(self) -> InboundPipe:
        if self._pipe is None:
            raise RuntimeError("the local runtime is not started")
        return self._pipe

    def start(self) -> LocalRuntime:
        from convclass.training import metric_definitions

        self.workdir = self.workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.aws.start()
        self._undo.append(self.aws.stop)
        routing = contextlib.ExitStack()
        routing.enter_context(routed_output())
        self._undo.append(routing.close)
        self._runner = LocalTrainingRunner(
            workdir=self.workdir,
            metric_definitions=[MetricDefinition(d["Name"], d["Regex"]) for d in metric_definitions()],
            listener=self.training_listener,
        )
        self._endpoints = LocalEndpointHost(workdir=self.workdir)
        _cold_start_functions()
        self._install_hooks()
        self.outputs = deploy(self.aws, self.pipeline_settings, self.feedback_policies)
        self.outputs.save(self.outputs_path)
        if self.persist:
            self.restored_objects = state.restore(
                self.workdir / STATE_DIR,
                self._clients(),
                self.bucket,
                self.outputs.require("kms_key_arn"),
            )
            self._restored = True
        self._start_pipe()
        self._start_sources()
        self._archive = InferenceArchive.create(
            {name: self.aws.client(name) for name in ("sqs", "events", "s3")},
            stack=STACK,
            bus=self.outputs.require("event_bus_name"),
            bucket=self.bucket,
            kms_key_arn=self.outputs.require("kms_key_arn"),
        )
        self._archive.start()
        return self

    @property
    def archived_events(self) -> int:
        """Inference events archived for the console since the runtime started."""
        return self._archive.archived if self._archive is not None else 0

    @property
    def bucket(self) -> str:
        return self.outputs.require("data_bucket")

    def _clients(self) -> dict[str, Any]:
        return {"s3": self.aws.client("s3"), "sagemaker": self.aws.client("sagemaker")}

    def _install_hooks(self) -> None:
        runner, endpoints = self._runner, self.endpoints
        assert runner is not None
        previous = moto_shims.current()
        moto_shims.install(
            moto_shims.EngineHooks(
                lambda_dispatch=_dispatch_lambda,
                training_runner=runner.run,
                invoke_endpoint=lambda request: _invoke_endpoint(endpoints, request),
            )
        )
        self._undo.append(lambda: moto_shims.install(previous))

    def _start_pipe(self) -> None:
        sqs, sfn = self.aws.client("sqs"), self.aws.client("stepfunctions")
        queue_url = self.outputs.require("inbound_queue_url")
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._pipe = InboundPipe(
            sqs=sqs,
            sfn=sfn,
            queue_url=queue_url,
            queue_arn=queue_arn,
            region=self.aws.region,
            state_machine_arn=self.outputs.require("inference_state_machine_arn"),
            batch_size=INBOUND_BATCH_SIZE,
        )
        self._pipe.start()

    def _start_sources(self) -> None:
        sqs, lam = self.aws.client("sqs"), self.aws.client("lambda")
        for source in EVENT_SOURCES:
            url = sqs.get_queue_url(QueueName=stack_resource_name(STACK, source.queue))["QueueUrl"]
            poller = QueueFunctionSource(
                sqs=sqs,
                lam=lam,
                queue_url=url,
                queue_arn=sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ],
                region=self.aws.region,
                function_name=function_name(source.function),
                batch_size=source.batch_size,
                # Locally a second is window enough: the events of a burst arrive within milliseconds.
                window_s=min(source.window_s, 1.0),
            )
            poller.start()
            self._sources.append(poller)

    def stop_executions(self) -> int:
        """Stop every running execution of the stack's state machines; return how many were stopped."""
        sfn = self.aws.client("stepfunctions")
        stopped = 0
        for arn in (self.outputs.training_state_machine_arn, self.outputs.inference_state_machine_arn):
            if not arn:
                continue
            for item in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING").get(
                "executions", []
            ):
                sfn.stop_execution(
                    executionArn=item["executionArn"], error="Interrupted", cause="local run ended"
                )
                stopped += 1
        return stopped

    def close(self) -> None:
        """Stop the Pipe, executions, training jobs and endpoints; save the data; stop the embedded AWS."""
        if self._pipe is not None:
            self._pipe.stop()
            self._pipe = None
        while self._sources:
            self._sources.pop().stop()
        if self._archive is not None:
            try:
                self._archive.stop()
            except Exception:  # closing must go on: the events are only statistics
                _log.exception("could not archive the last inference events")
            self._archive = None
        if self.aws.port:
            try:
                self.stop_executions()
            except Exception:  # closing must go on whatever state the engine is in
                _log.exception("could not stop running executions")
        if self._runner is not None:
            self._runner.stop_all()
            moto_shims.join_training_jobs(timeout_s=30)
            self._runner = None
        if self._endpoints is not None:
            self._endpoints.stop_all()
            self._endpoints = None
        if self._restored and self.aws.port:
            # Only a runtime that restored the previous data may replace it (a failed start must not wipe it).
            try:
                state.save(self.workdir / STATE_DIR, self._clients(), self.bucket)
            except Exception:
                _log.exception("could not save the local deployment's data")
            self._restored = False
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:
                _log.exception("cleanup step failed")

    def __enter__(self) -> LocalRuntime:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _cold_start_functions() -> None:
    """A new deployment runs new Lambda containers: forget the handler modules (and the clients they cache)
    that an earlier runtime in this process imported against another endpoint."""
    for name in [
        module for module in sys.modules if module == "functions" or module.startswith("functions.")
    ]:
        del sys.modules[name]


def _dispatch_lambda(invocation: moto_shims.LambdaInvocation) -> tuple[str, bool]:
    """A Lambda invoke → the handler its image CMD names, run in this process."""
    event = invocation.event
    if isinstance(event, bytes | str):
        event = json.loads(event) if event else {}
    return invoke_handler(
        invocation.handler,
        event,
        function_name=invocation.function_name,
        function_arn=invocation.function_arn,
        environment=invocation.environment,
        memory_mb=invocation.memory_mb,
        timeout_s=invocation.timeout_s,
    )


def _invoke_endpoint(
    host: LocalEndpointHost, request: moto_shims.EndpointRequest
) -> moto_shims.EndpointReply:
    """InvokeEndpoint → the endpoint's serving process, with sagemaker-runtime's error names."""
    try:
        status, body, content_type = host.invoke(
            request.endpoint_name,
            request.body,
            request.content_type,
            request.accept,
            target_model=request.target_model,
        )
    except EndpointUnavailable as exc:
        raise moto_shims.EndpointError("ValidationError", str(exc), 400) from exc
    return moto_shims.container_answer(status, body, content_type)
