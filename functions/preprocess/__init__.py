"""Preprocess Lambda: export parts in S3 → cleaned, tokenized dataset splits in S3."""
