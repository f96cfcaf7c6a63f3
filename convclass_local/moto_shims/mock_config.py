"""Mocked service responses in the Step Functions Local mock-config format (``SFN_MOCK_CONFIG``).

Start an execution on ``stateMachineArn#TestCase`` and the test case's responses replace the named states'
service calls; a state's n-th invocation in the execution (retries and loop turns alike) takes response ``n``.
moto has the mock-config types but never loads a configuration, so three functions are hooked:
``StepFunctionsParserBackend.start_execution`` takes the ``#TestCase`` suffix off, the execution's worker
(``Execution._get_start_execution_worker``) is handed the test case, and
``Environment.get_current_mocked_response`` counts invocations per state.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.stepfunctions.parser.mocking.mock_config import MockTestCase, StateMockedResponses

from convclass_local.moto_shims.hooks import current
from convclass_local.moto_shims.internals import SFN, moto, pinned

Environment = moto(f"{SFN}.asl.eval.environment", "Environment")
Execution = moto(f"{SFN}.backend.execution", "Execution")
StepFunctionsParserBackend = moto(f"{SFN}.models", "StepFunctionsParserBackend")
_mock_config = moto(f"{SFN}.mocking.mock_config")
MockedResponseReturn = _mock_config.MockedResponseReturn
MockedResponseThrow = _mock_config.MockedResponseThrow
#: moto's mocked-response type (a response to return, or an error to throw).
MockedResponse = Any

#: Parameters of the moto functions this shim replaces, as moto 5.2.5 defines them.
PINNED = {
    "StepFunctionsParserBackend.start_execution": [
        "self",
        "state_machine_arn",
        "name",
        "execution_input",
        "trace_header",
    ],
    "Execution._get_start_execution_worker": ["self"],
    "Environment.get_current_mocked_response": ["self"],
}

#: The test case of the execution being started on this thread, for its worker to pick up.
_pending_test_case = threading.local()


@dataclass(frozen=True)
class MockConfig:
    """A Step Functions Local mock configuration (``SFN_MOCK_CONFIG`` format)."""

    raw: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> MockConfig:
        return cls(json.loads(Path(path).read_text()))

    def test_case(self, state_machine_name: str, test_case_name: str) -> MockTestCase:
        machines = self.raw.get("StateMachines", {})
        cases = machines.get(state_machine_name, {}).get("TestCases", {})
        if test_case_name not in cases:
            raise ValueError(
                f"mock config has no test case {test_case_name!r} for state machine {state_machine_name!r}"
            )
        responses = self.raw.get("MockedResponses", {})
        per_state = []
        for state_name, response_name in cases[test_case_name].items():
            if response_name not in responses:
                raise ValueError(f"mock config has no mocked response {response_name!r}")
            per_state.append(
                StateMockedResponses(
                    state_name=state_name,
                    mocked_response_name=response_name,
                    mocked_responses=[
                        _mocked_response(key, value) for key, value in responses[response_name].items()
                    ],
                )
            )
        return _CountingTestCase(state_machine_name, test_case_name, per_state)


def patch() -> None:
    original_start_execution = pinned(
        "StepFunctionsParserBackend.start_execution",
        StepFunctionsParserBackend.start_execution,
        PINNED["StepFunctionsParserBackend.start_execution"],
    )
    original_worker = pinned(
        "Execution._get_start_execution_worker",
        Execution._get_start_execution_worker,
        PINNED["Execution._get_start_execution_worker"],
    )
    original_mocked_response = pinned(
        "Environment.get_current_mocked_response",
        Environment.get_current_mocked_response,
        PINNED["Environment.get_current_mocked_response"],
    )

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        base_arn, _, case_name = state_machine_arn.partition("#")
        if not case_name:
            return original_start_execution(self, state_machine_arn, *args, **kwargs)
        config = current().mock_config
        if config is None:
            raise ValueError("a #TestCase execution needs EngineHooks.mock_config")
        _pending_test_case.value = config.test_case(base_arn.rsplit(":", 1)[-1], case_name)
        try:
            return original_start_execution(self, base_arn, *args, **kwargs)
        finally:
            _pending_test_case.value = None

    def start_execution_worker(self: Any) -> Any:
        worker = original_worker(self)
        case = getattr(_pending_test_case, "value", None)
        if case is not None:
            worker._mock_test_case = case
        return worker

    def get_current_mocked_response(self: Any) -> MockedResponse:
        case = self.mock_test_case
        if isinstance(case, _CountingTestCase):
            return case.next_response(self.next_state_name)
        return original_mocked_response(self)

    StepFunctionsParserBackend.start_execution = start_execution
    Execution._get_start_execution_worker = start_execution_worker
    Environment.get_current_mocked_response = get_current_mocked_response


def _mocked_response(range_key: str, value: Mapping[str, Any]) -> MockedResponse:
    start_text, _, end_text = range_key.partition("-")
    start = int(start_text)
    end = int(end_text) if end_text else start
    if "Return" in value:
        return MockedResponseReturn(start, end, value["Return"])
    throw = value["Throw"]
    return MockedResponseThrow(start, end, throw["Error"], throw.get("Cause", ""))


class _CountingTestCase(MockTestCase):
    """A test case that hands each state its responses in invocation order."""

    def __init__(
        self, state_machine_name: str, test_case_name: str, states: list[StateMockedResponses]
    ) -> None:
        super().__init__(state_machine_name, test_case_name, states)
        self._lock = threading.Lock()
        self._invocations: dict[str, int] = {}

    def next_response(self, state_name: str) -> MockedResponse:
        with self._lock:
            index = self._invocations.get(state_name, 0)
            self._invocations[state_name] = index + 1
        responses = self.state_mocked_responses[state_name].mocked_responses
        if index >= len(responses):
            raise RuntimeError(f"mock config: no response for invocation {index} of state {state_name!r}")
        return responses[index]
