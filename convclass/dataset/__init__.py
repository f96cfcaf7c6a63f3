"""Dataset building: export records → cleaned, tokenized train/validation/test splits plus a manifest."""

from convclass.dataset.builder import SPLIT_SCHEMA, BuildOptions, build_dataset
from convclass.dataset.manifest import MANIFEST_FILE, SPLIT_FILES, DatasetManifest, RecordCounts

__all__ = [
    "MANIFEST_FILE",
    "SPLIT_FILES",
    "SPLIT_SCHEMA",
    "BuildOptions",
    "DatasetManifest",
    "RecordCounts",
    "build_dataset",
]
