"""Turn a body of unknown provenance into ``str`` and report how much of it was damaged.

Mail systems hand over bodies as bytes in whatever charset the sender used, or as text that was decoded with
the wrong one somewhere upstream (mojibake such as ``CafÃ©``). Both are repaired when that is unambiguous and
always reported, so the dataset manifest can say how many emails arrived damaged instead of silently training
on noise.
"""

from __future__ import annotations

import contextlib
import re

#: UTF-8 read as Windows-1252/Latin-1: an Ã/Â/â lead followed by a continuation-range character.
_MOJIBAKE_RE = re.compile(
    "[\u00c2\u00c3][\u0080-\u00bf]|\u00e2\u20ac[\u0080-\u00bf\u2018-\u203a\u201c\u201d\u2122]"
)


def decode_body(body: str | bytes) -> tuple[str, int]:
    """Return ``(text, issues)``: the decoded body and how many damaged spots were found (0 when clean)."""
    if isinstance(body, bytes | bytearray | memoryview):
        text, issues, as_utf8 = _decode(bytes(body), None)
        return _repair_text(text) if as_utf8 else (text, issues)
    return _repair_text(body)


def decode_bytes(raw: bytes, charset: str | None = None) -> tuple[str, int]:
    """Bytes → text: the declared ``charset``, a UTF-16 byte-order mark, UTF-8, else Windows-1252.

    Returns ``(text, issues)``: how many bytes did not decode (0 when one of them decoded ``raw`` cleanly).
    Export uses it as it reads a store's bytes; ``decode_body`` also repairs mojibake afterwards.
    """
    text, issues, _ = _decode(raw, charset)
    return text, issues


def _decode(raw: bytes, charset: str | None) -> tuple[str, int, bool]:
    """``(text, issues, decoded as UTF-8)``."""
    if charset is not None:
        try:
            return raw.decode(charset), 0, charset.replace("_", "-").lower() in ("utf-8", "utf8")
        except (UnicodeDecodeError, LookupError):
            pass
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
        return text, text.count("\ufffd"), False
    try:
        return raw.decode("utf-8-sig"), 0, True
    except UnicodeDecodeError:
        # Not UTF-8: legacy mail is overwhelmingly Windows-1252, which maps almost every byte to a character.
        invalid = len(raw) - len(raw.decode("utf-8", errors="ignore").encode("utf-8"))
        return raw.decode("cp1252", errors="replace"), max(1, invalid), False


def _repair_text(text: str) -> tuple[str, int]:
    if text.isascii():  # O(1) in CPython: pure-ASCII text can carry neither U+FFFD nor mojibake
        return text, 0
    issues = text.count("\ufffd")
    if "\u00c2" in text or "\u00c3" in text or "\u00e2" in text:
        found = len(_MOJIBAKE_RE.findall(text))
        if found:
            issues += found
            # Mixed damage cannot be undone: the text stays as it is, the count still tells the story.
            with contextlib.suppress(UnicodeError):
                text = text.encode("cp1252").decode("utf-8")
    return text, issues
