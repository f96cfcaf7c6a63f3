"""Email cleaning shared by preprocessing, training and serving (import it, never copy it).

Python compiled with Cython (setup.py), on top of selectolax: no AWS, no TensorFlow, so the serving image and
every Lambda can import it cheaply. ``clean_email`` is deterministic for a given ``CLEANING_VERSION``.
"""

from convclass.cleaning._decode import decode_bytes
from convclass.cleaning.core import (
    CLEANING_VERSION,
    DEFAULT_MAX_CHARS,
    MAX_INPUT_CHARS,
    CleanedEmail,
    clean_email,
)
from convclass.cleaning.pii import PII_TOKENS, mask_pii

__all__ = [
    "CLEANING_VERSION",
    "DEFAULT_MAX_CHARS",
    "MAX_INPUT_CHARS",
    "PII_TOKENS",
    "CleanedEmail",
    "clean_email",
    "decode_bytes",
    "mask_pii",
]
