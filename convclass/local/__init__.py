"""The embedded default: convclass's real workflows on an in-process AWS (moto) on one machine.

Nothing in the product imports this package; it stands in for AWS so that ``convclass local demo`` and the
tests run the same state machines, Lambda handlers, training entrypoint and serving app that a deployment
runs.
"""
