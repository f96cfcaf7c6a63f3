"""PII masking: replace customer data with fixed tokens so models learn from ``[EMAIL]``, not from addresses.

The tokens are special tokens of every convclass tokenizer (see convclass.tokenization), so each one is a
single token id and is never split into word pieces.
"""

from __future__ import annotations

import re

EMAIL = "[EMAIL]"
URL = "[URL]"
PHONE = "[PHONE]"
NUMBER = "[NUMBER]"

#: Every token masking can produce, in a stable order (tokenizers register them as special tokens in this
#: order).
PII_TOKENS: tuple[str, ...] = (EMAIL, URL, PHONE, NUMBER)

# The domain part, found from its literal "@" (sre jumps between "@"s); the local part is walked back by hand,
# because a pattern starting with [\w.+'-]+ would be tried, and backtrack, at every letter of the text.
_EMAIL_DOMAIN_RE = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
_EMAIL_LOCAL_CHARS = frozenset("._+'-")
_URL_RE = re.compile(r"(?=[hfw])(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"']+", re.IGNORECASE)
# One pass for everything numeric, tried in this order at each position:
# card, IBAN-like and account numbers (13-19 digits, optionally grouped by spaces or dashes);
# phone numbers (an international prefix, a bracketed area code, or three groups split by space/dot/dash);
# any other run of 5+ digits (order, ticket, account numbers), keeping letters glued in front (ORD-[NUMBER]).
# The leading lookahead lets sre reject most positions with one character test.
_NUMBERS_RE = re.compile(
    r"(?=[\d+(])(?:(?P<card>(?<![\w+])\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?(?!\w))"
    r"|(?P<phone>(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(0\)[\s.-]?)?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}"
    r"|\(\d{2,5}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4})(?!\w))"
    r"|(?P<digits>(?<!\d)\d{5,}(?!\d)))"
)
_ANY_DIGIT_RE = re.compile(r"\d")
_URL_TRAILING = ".,;:!?)]}'\""


def _has_digit(text: str) -> bool:
    if not text.isascii():
        return _ANY_DIGIT_RE.search(text) is not None
    # Single-character searches are memchr-fast, and map() keeps the loop in C.
    return any(map(text.__contains__, "0123456789"))


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Return the masked text and how many spans each token replaced (only tokens that occurred)."""
    counts: dict[str, int] = {}
    if "@" in text:
        text, n = _mask_emails(text)
        if n:
            counts[EMAIL] = n
    if "://" in text or "www." in text.lower():
        text, n = _URL_RE.subn(_strip_url, text)
        if n:
            counts[URL] = n
    if _has_digit(text):

        def number(match: re.Match[str]) -> str:
            token = PHONE if match.lastgroup == "phone" else NUMBER
            counts[token] = counts.get(token, 0) + 1
            return token

        text = _NUMBERS_RE.sub(number, text)
    return text, counts


def _mask_emails(text: str) -> tuple[str, int]:
    parts: list[str] = []
    last = count = 0
    for match in _EMAIL_DOMAIN_RE.finditer(text):
        local = at = match.start()
        while local > last and (text[local - 1].isalnum() or text[local - 1] in _EMAIL_LOCAL_CHARS):
            local -= 1
        if local == at:
            continue  # "@handle" or "@ example.com": not an address
        parts.append(text[last:local])
        parts.append(EMAIL)
        last = match.end()
        count += 1
    if not count:
        return text, 0
    parts.append(text[last:])
    return "".join(parts), count


def _strip_url(match: re.Match[str]) -> str:
    # Sentence punctuation right after a URL belongs to the sentence, not to the URL.
    value = match.group(0)
    stripped = value.rstrip(_URL_TRAILING)
    return URL + value[len(stripped) :]
