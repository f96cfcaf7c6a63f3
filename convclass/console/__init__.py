"""The customer console: each business customer (tenant) sees, approves and steers its own classifiers.

A server-rendered FastAPI app (no JavaScript build, charts as inline SVG). Every request carries a signed JWT
whose ``tenant`` claim scopes it to exactly one tenant (:mod:`convclass.console.auth`); every object a page
reads is re-checked against that tenant (:mod:`convclass.console.data`), so another tenant's run id, model
or key answers 404. Approvals go to the waiting execution through :class:`convclass.operator.Operator`.
"""
