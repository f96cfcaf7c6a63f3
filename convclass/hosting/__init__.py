"""Hosting many tenants: where shared models live in S3 (``keys``), what hosting costs (``cost``)."""
