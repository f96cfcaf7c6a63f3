"""The embedded default: convclass's real workflows on an in-process AWS (moto) on one machine.

Development tooling, never shipped: no image copies this package and nothing in the product imports it. It
stands in for AWS so that ``convclass-local demo`` and the tests run the same state machines, Lambda
handlers, training entrypoint and serving app that a deployment runs; :mod:`convclass_local.generator` makes
the sample tenants' data.
"""
