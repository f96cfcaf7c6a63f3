"""What an operator does with a deployed convclass stack, through plain boto3: the typed core behind the CLI.

Every call goes to the AWS account (or embedded AWS) that boto3's usual configuration points at; names and
keys come from :mod:`convclass.layout` and resource ARNs from the stack outputs, so this code runs unchanged
against a real deployment and against the embedded AWS of ``convclass-local``.

One module per concern, each a small class on :class:`~convclass.operator.clients.StackClients`:
:mod:`~convclass.operator.runs`, :mod:`~convclass.operator.approvals` (built on runs: a gate's token is in the
run's history), :mod:`~convclass.operator.endpoints` and :mod:`~convclass.operator.logs`;
:mod:`~convclass.operator.history` reads execution histories without AWS. :class:`Operator` composes them.
"""

from __future__ import annotations

from convclass.operator.approvals import Approvals
from convclass.operator.endpoints import Endpoints
from convclass.operator.logs import Logs


class Operator(Approvals, Endpoints, Logs):
    """Operator actions on one stack. Construct with the stack outputs; clients are created lazily."""


__all__ = ["Operator"]
