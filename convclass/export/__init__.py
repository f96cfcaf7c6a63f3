"""Export: a tenant's labelled conversations (MongoDB, OpenSearch or dropped files) → Parquet parts on S3.

Submodules are imported where needed: the chunk planner, window and manifest models are light and pure
(the state machine imports them), while the sources pull in their database drivers.
"""
