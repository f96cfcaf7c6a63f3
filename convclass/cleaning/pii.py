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
CARD = "[CARD]"

#: Every token masking can produce, in a stable order (tokenizers register them as special tokens in this
#: order; new tokens are only ever appended, so the ids of the older ones never move).
PII_TOKENS: tuple[str, ...] = (EMAIL, URL, PHONE, NUMBER, CARD)

# The domain part, found from its literal "@" (sre jumps between "@"s); the local part is walked back by hand,
# because a pattern starting with [\w.+'-]+ would be tried, and backtrack, at every letter of the text.
_EMAIL_DOMAIN_RE = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
_EMAIL_LOCAL_CHARS = frozenset("._+'-")
_URL_RE = re.compile(r"(?=[hfw])(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"']+", re.IGNORECASE)
# One pass for everything numeric, tried in this order at each position:
# the part of an IBAN after its country code (checked with ISO 13616's mod 97 in _mask_numbers);
# a run of 7+ digits with the separators phone, card and account numbers use ("+44 (0) 20 7946-0958"),
# classified as a whole by _run_token (shorter runs, such as dates, times and amounts, are no phone or card);
# any other run of 5+ digits (order, ticket, account numbers), keeping letters glued in front (ORD-[NUMBER]).
# The leading lookahead lets sre reject most positions with one character test.
_NUMBERS_RE = re.compile(
    r"(?=[\d+(])(?:(?P<iban>(?<=[A-Z]{2})\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9]))"
    r"|(?P<run>(?<![\w+])(?=(?:[ ().\-/+]{0,4}\d){7})(?:\+ ?|\( ?)?\d(?: ?[().\-/]? ?\(?\d)*\)?)"
    r"|(?P<digits>(?<!\d)\d{5,}(?!\d)))"
)
_LONG_DIGITS_RE = re.compile(r"\d{5,}")
_DATE_RE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}")
_NANP_RE = re.compile(r"\d{3}[ .-]\d{3}[ .-]\d{4}")
_RUN_GROUPS_RE = re.compile(r"\d+")
_ANY_DIGIT_RE = re.compile(r"\d")
_URL_TRAILING = ".,;:!?)]}'\""
# Phone numbers have at most 15 digits (E.164); a local number with a trunk "0" or an area code in
# brackets has at least this many.
_MIN_PHONE_DIGITS = 7
_MIN_LOCAL_PHONE_DIGITS = 9
_MAX_PHONE_DIGITS = 15
_CARD_DIGITS = range(13, 20)
# The most space-separated pieces one number is written in ("+33 1 42 68 53 00" has six).
_MAX_NUMBER_PIECES = 7


def _has_digit(text: str) -> bool:
    if not text.isascii():
        return _ANY_DIGIT_RE.search(text) is not None
    # Single-character searches are memchr-fast, and map() keeps the loop in C.
    return any(map(text.__contains__, "0123456789"))


def _has_www(text: str) -> bool:
    """Whether ``text`` holds "www." in any mix of cases.

    Substring searches, where a regex would stop at every "w" of the prose; only "W" lower-cases to "w".
    """
    return "www." in text or ("W" in text and "www." in text.lower())


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Return the masked text and how many spans each token replaced (only tokens that occurred)."""
    counts: dict[str, int] = {}
    if "@" in text:
        text, n = _mask_emails(text)
        if n:
            counts[EMAIL] = n
    if "://" in text or _has_www(text):
        text, n = _URL_RE.subn(_strip_url, text)
        if n:
            counts[URL] = n
    if _has_digit(text):
        text = _mask_numbers(text, counts)
    return text, counts


def _mask_numbers(text: str, counts: dict[str, int]) -> str:
    parts: list[str] = []
    last = 0
    for match in _NUMBERS_RE.finditer(text):
        start, end = match.span()
        kind = match.lastgroup
        value = match.group()
        if kind == "iban":
            start -= 2  # the country code the lookbehind saw
            if start < last or (start and text[start - 1].isalnum()) or not _iban_valid(text[start:end]):
                replaced = _mask_long_digits(value, counts)
                if replaced != value:
                    parts += [text[last : match.start()], replaced]
                    last = end
                continue
            token = NUMBER
        elif kind == "run":
            replaced = _mask_run(value, counts)
            if replaced != value:
                parts += [text[last:start], replaced]
                last = end
            continue
        else:
            token = NUMBER
        counts[token] = counts.get(token, 0) + 1
        parts += [text[last:start], token]
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _run_token(run: str) -> str | None:
    """The token for a whole run of digits and separators, or None when it is no phone, card or account."""
    groups = _RUN_GROUPS_RE.findall(run)
    digits = sum(map(len, groups))
    if not run[0].isdigit() and run[0] not in "+(":
        return None  # a piece that starts with a separator ("-0132") is the tail of a number
    if digits < _MIN_PHONE_DIGITS:
        return None
    if run[0] == "+":
        return PHONE if digits <= _MAX_PHONE_DIGITS else None
    if _DATE_RE.fullmatch(run):
        return None
    plain = "".join(groups)
    # Cards and accounts are written in groups of four or more digits (Amex: 4-6-5), the last may be shorter.
    card_like = (
        digits in _CARD_DIGITS and not run.strip("0123456789 -") and all(len(g) > 3 for g in groups[:-1])
    )
    if card_like and _luhn_valid(plain):
        return CARD
    if (run[0] in "(0" and len(groups) > 1 and _MIN_LOCAL_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS) or (
        _NANP_RE.fullmatch(run)
    ):
        return PHONE
    return NUMBER if card_like else None


def _mask_run(run: str, counts: dict[str, int]) -> str:
    """Mask a run of digits: whole when it is one number, else split at spaces into the longest numbers.

    "+1 (415) 555-0132 (212) 555-0199" is two phone numbers; a piece that starts no number keeps its short
    digit groups (amounts, years) and loses only runs of 5+ digits.
    """
    token = _run_token(run)
    if token is not None:
        counts[token] = counts.get(token, 0) + 1
        return token
    if " " not in run:
        return _mask_long_digits(run, counts)
    pieces = run.split(" ")
    out = []
    index = 0
    while index < len(pieces):
        # A piece starting with "+", or with "(" past a country code ("(0)" aside), starts another number.
        limit = index + 1
        while limit < min(len(pieces), index + _MAX_NUMBER_PIECES) and not _starts_number(
            pieces, index, limit
        ):
            limit += 1
        for stop in range(limit, index, -1):
            token = _run_token(" ".join(pieces[index:stop]))
            if token is not None:
                counts[token] = counts.get(token, 0) + 1
                out.append(token)
                index = stop
                break
        else:
            out.append(_mask_long_digits(pieces[index], counts))
            index += 1
    return " ".join(out)


def _starts_number(pieces: list[str], first: int, index: int) -> bool:
    piece = pieces[index]
    return piece[:1] == "+" or (piece[:1] == "(" and piece != "(0)" and index > first + 1)


def _mask_long_digits(text: str, counts: dict[str, int]) -> str:
    text, n = _LONG_DIGITS_RE.subn(NUMBER, text)
    if n:
        counts[NUMBER] = counts.get(NUMBER, 0) + n
    return text


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    """ISO 13616: country code and check digits moved to the end, letters as numbers, mod 97 is 1."""
    compact = candidate.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


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
