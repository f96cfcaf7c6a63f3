"""PII masking: replace customer data with fixed tokens so models learn from ``[EMAIL]``, not from addresses.

The tokens are special tokens of every convclass tokenizer (see convclass.tokenization), so each one is a
single token id and is never split into word pieces.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = "[EMAIL]"
URL = "[URL]"
PHONE = "[PHONE]"
NUMBER = "[NUMBER]"

#: Every token masking can produce, in a stable order (tokenizers register them as special tokens in this
#: order).
PII_TOKENS: tuple[str, ...] = (EMAIL, URL, PHONE, NUMBER)

_EMAIL_RE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_URL_RE = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"']+", re.IGNORECASE)
# Card, IBAN-like and account numbers: 13-19 digits, optionally grouped by spaces or dashes.
_CARD_RE = re.compile(r"(?<![\w+])\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?(?!\w)")
# Phone numbers: an international prefix or a bracketed area code, or three groups separated by
# space/dot/dash.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(0\)[\s.-]?)?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}"
    r"|\(\d{2,5}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4})(?!\w)"
)
# Any remaining run of 5+ digits (order, ticket, account numbers); letters glued in front are kept
# (ORD-[NUMBER]).
_DIGITS_RE = re.compile(r"(?<!\d)\d{5,}(?!\d)")
_ANY_DIGIT_RE = re.compile(r"\d")
_URL_TRAILING = ".,;:!?)]}'\""


def _strip_url(match: re.Match[str]) -> str:
    # Sentence punctuation right after a URL belongs to the sentence, not to the URL.
    value = match.group(0)
    stripped = value.rstrip(_URL_TRAILING)
    return URL + value[len(stripped) :]


_RULES: tuple[tuple[str, re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (EMAIL, _EMAIL_RE, EMAIL),
    (URL, _URL_RE, _strip_url),
    (NUMBER, _CARD_RE, NUMBER),
    (PHONE, _PHONE_RE, PHONE),
    (NUMBER, _DIGITS_RE, NUMBER),
)


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Return the masked text and how many spans each token replaced (only tokens that occurred)."""
    counts: dict[str, int] = {}
    has_digit = _ANY_DIGIT_RE.search(text) is not None
    for token, pattern, repl in _RULES:
        if token == EMAIL and "@" not in text:
            continue
        if token == URL and "://" not in text and "www." not in text.lower():
            continue
        if token in (NUMBER, PHONE) and not has_digit:
            continue
        text, n = pattern.subn(repl, text)
        if n:
            counts[token] = counts.get(token, 0) + n
    return text, counts
