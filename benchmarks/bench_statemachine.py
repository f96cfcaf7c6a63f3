"""Cost of one training run's orchestration: billable transitions and history size on the happy path.

Runs the real training-pipeline definition on moto's Step Functions engine (the workflow lab of
``convclass_local``): the plan function in process, SageMaker and S3 calls on moto, export, preprocess,
evaluate and the endpoint's describe answers mocked so that the endpoint is InService on the ``--polls``-th
poll. Then runs every path of ``statemachine.mockconfig.TRAINING_PATHS`` and checks each ends as documented.

Last line: one JSON object with ``transitions_happy_path`` (goal ≤ 40 at 3 polls), ``history_events``,
``paths_tested`` and ``paths_passed``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from moto import mock_aws

from convclass_local import moto_shims
from convclass_local.workflow_lab import REGION, build_world, hooks, request
from statemachine.mockconfig import TRAINING_PATHS

GOAL_TRANSITIONS = 40


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=3, help="describeEndpoint polls until InService")
    args = parser.parse_args()
    # The evaluate function runs for real (FindChampion): its clients need the lab's region.
    defaults = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config), moto_shims.installed(hooks()):
        world = build_world()
        started = time.perf_counter()
        _, happy = world.run_training(
            request("bench"), "bench-support-1", "HappyPath", polls_to_in_service=args.polls
        )
        happy_seconds = time.perf_counter() - started
        if happy.status != "SUCCEEDED":
            raise SystemExit(f"happy path ended {happy.status}: {happy.error} {happy.cause}")
        print(
            f"happy path: {happy.transitions} transitions, {happy.history_events} history events, "
            f"{happy_seconds:.2f} s on the local engine"
        )
        print("  " + " → ".join(happy.entered))
        failed = []
        for index, (case, expected) in enumerate(TRAINING_PATHS.items()):
            tenant = f"path{index}"
            _, run = world.run_training(request(tenant), f"{tenant}-support-1", case)
            ok = (run.status, run.error) == (expected.status, expected.error)
            print(
                f"path {case:<20} {run.status:<10} {run.error or '':<18} {run.transitions:>3} transitions "
                f"{'ok' if ok else 'UNEXPECTED'}"
            )
            if not ok:
                failed.append(case)
    result = {
        "transitions_happy_path": happy.transitions,
        "history_events": happy.history_events,
        "paths_tested": len(TRAINING_PATHS),
        "paths_passed": len(TRAINING_PATHS) - len(failed),
        "paths_failed": failed,
        "endpoint_polls": args.polls,
        "goal_transitions": GOAL_TRANSITIONS,
        "within_goal": happy.transitions <= GOAL_TRANSITIONS,
        "happy_path_seconds": round(happy_seconds, 3),
    }
    print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
