"""Console Lambda: the customer console's web app behind the API Gateway HTTP API (convclass.console.aws)."""

from convclass.console.aws import handler

__all__ = ["handler"]
