"""Export Lambda (every export state and the export gate's answer): :mod:`convclass.steps.export` behind
the shared adapter. Named errors (``ExportNotApproved``, ``SourceUnavailable``, ``InvalidInput``,
``InsufficientData``, ``ExportIncomplete``, ``UnknownTenant``) reach Step Functions under their names."""

from __future__ import annotations

from convclass.steps import export
from functions.adapter import lambda_handler

handler = lambda_handler(export.STEP)
