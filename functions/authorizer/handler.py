"""Authorizer Lambda: the console API's authorizer, verifying the tenant's JWT (convclass.console.aws)."""

from convclass.console.aws import authorizer as handler

__all__ = ["handler"]
