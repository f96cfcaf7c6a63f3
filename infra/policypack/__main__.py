"""CrossGuard entry point: serves the policies of ``infra.policies`` to the Pulumi CLI."""

import sys
from pathlib import Path

# The CLI starts this file from infra/policypack/; the rules live in the repository root's `infra` package.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import PolicyPack  # noqa: E402

from infra.policies import ENFORCEMENT, POLICIES  # noqa: E402

PolicyPack(name="convclass-policies", policies=list(POLICIES), enforcement_level=ENFORCEMENT)
