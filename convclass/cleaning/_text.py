"""Plain-text normalisation and removal of what is not the customer's own words.

Works on lines, after HTML has been reduced to text: quoted earlier messages, signatures, legal disclaimers
and greeting/sign-off lines carry no signal about *this* request and would teach a classifier the tenant's
email footer instead of the customer's intent.
"""

from __future__ import annotations

import re
import unicodedata

from convclass.cleaning._html import BREAK

# Zero-width, bidi and other format characters, C0/C1 controls (except tab/newline, handled as whitespace) and
# private-use code points, except U+E000: that is the line marker, and callers remove foreign ones first.
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\ufffd\ue001-\uf8ff"
    "\U000e0000-\U000e0fff]"
)
# Written as two literal markers, so sre jumps to candidates with a substring search (twice as fast).
_BREAK_RUN_RE = re.compile(BREAK + BREAK + "+")
_BLANK_RUN_RE = re.compile("\n{3,}")
_ASCII_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")

# One multi-line search finds the first line where the customer's own text ends: a reply header, a signature
# delimiter, or a legal disclaimer. Everything from there on is cut; the group name says which it was.
_CUT_RE = re.compile(
    r"^(?:(?P<quote>(?:on\b.{0,250}\bwrote\s*:?|le\b.{0,250}\ba écrit\s*:?|am\b.{0,250}\bschrieb\b.{0,80}:?"
    r"|el\b.{0,250}\bescribió\s*:?|op\b.{0,250}\bschreef\b.{0,80}:?"
    r"|-{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht|message d'origine)\s*-{0,}.*"
    r"|_{10,}|begin forwarded message\s*:?)$"
    # "On Mon, 3 Mar 2025, Jane <jane@x.com>\nwrote:" as many clients wrap it.
    r"|on\b.{0,250}\n\s*wrote\s*:?$"
    # Outlook's plain header block: "From: …" followed within three lines by "Sent:/Date:/To:/Subject:".
    r"|(?:from|von|de|van)\s*:\s*\S.*\n(?:.*\n){0,2}?(?:sent|date|to|subject|gesendet|an|betreff|envoyé|objet)"
    r"\s*:)"
    r"|(?P<signature>(?:--|—|sent from my \w[\w ]{0,30}|sent from (?:outlook|mail|yahoo mail|gmail)\b.{0,40}"
    r"|get outlook for \w+.{0,10}|sent via \w[\w ]{0,30}|envoyé de mon \w+.{0,20}"
    r"|von meinem \w+ gesendet)[.!]?$)"
    r"|(?P<disclaimer>\W{0,3}(?:confidentiality notice|confidentiality note|disclaimer|legal notice"
    r"|important notice)\b"
    r"|this (?:e-?mail|message|communication)(?: and any (?:files|attachments)[^.]{0,40})?"
    r" (?:is|are|may be|contains?) (?:confidential|privileged|intended (?:only|solely))"
    r"|the information (?:contained )?in this (?:e-?mail|message|communication)"
    r"|if you are not the intended recipient|please consider the environment before printing))",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_LINE_RE = re.compile(r"^>.*(?:\n|$)", re.MULTILINE)
_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening|day)|greetings|hallo|bonjour|hola"
    r"|to whom it may concern)\b[\w .'&/-]{0,40}[,!:.]?$",
    re.IGNORECASE,
)
_VALEDICTION_RE = re.compile(
    r"^(?:(?:best|kind|warm|warmest|many|with)?\s*(?:regards|wishes|thanks)|thanks(?: a lot| so much| again"
    r"| in advance)?|thank you(?: in advance| so much)?|cheers|sincerely"
    r"|yours(?: sincerely| truly| faithfully)?"
    r"|best|all the best|take care|respectfully|mit freundlichen grüßen|cordialement|saludos|br|rgds"
    r"|talk soon|have a (?:nice|great|good) (?:day|weekend))[ ,.!]*$",
    re.IGNORECASE,
)
_MAX_SIGNOFF_LINES = 7
_MAX_VALEDICTION_CHARS = 40
_MAX_SIGNOFF_LINE_CHARS = 80


def normalize(text: str, *, marked: bool = False) -> str:
    """NFKC, drop invisible/control characters, collapse whitespace, keep line structure.

    Plain text ends lines with newlines; ``marked`` text (from HTML) ends them with ``BREAK`` markers and its
    newlines are ordinary whitespace. The result has single spaces, no spaces around newlines, at most one
    blank line in a row and no leading or trailing whitespace.
    """
    if not marked:
        if BREAK in text:
            text = text.replace(BREAK, "")  # only our own markers may end lines
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
    ascii_only = text.isascii()
    if ascii_only:
        if _ASCII_CONTROL_RE.search(text):
            text = _ASCII_CONTROL_RE.sub("", text)
    else:
        text = text.replace("\xa0", " ")  # the most common non-NFKC character in mail, and cheap to replace
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE_RE.sub("", text)
    if not marked:
        text = text.replace("\n", BREAK)
    # str.split() is C-speed whitespace collapsing; markers are not whitespace, so line structure survives.
    text = " ".join(text.split())
    # A space is printable, and a same-length replace is the cheaper one.
    if not ascii_only and not text.replace(BREAK, " ").isprintable():
        # Rare: format, private-use, surrogate or unassigned code points the fast pattern does not list.
        text = " ".join("".join(c for c in text if c == BREAK or c.isprintable() or c == " ").split())
    if BREAK in text:
        text = text.replace(" " + BREAK, BREAK).replace(BREAK + " ", BREAK)
        text = _BREAK_RUN_RE.sub("\n\n", text).replace(BREAK, "\n")
    return text.strip()


def html_text_to_lines(text: str) -> str:
    """Text extracted from HTML: source newlines are plain whitespace, only ``BREAK`` markers end a line."""
    return normalize(text, marked=True)


class Stripped:
    """What ``strip_non_content`` removed (flags for the cleaning report)."""

    __slots__ = ("disclaimer", "quote", "signature")

    def __init__(self) -> None:
        self.quote = False
        self.signature = False
        self.disclaimer = False


def strip_non_content(text: str) -> tuple[str, Stripped]:
    """Cut quoted replies, signatures and disclaimers; drop ``>`` lines and greeting/sign-off lines."""
    found = Stripped()
    cut = _CUT_RE.search(text)
    if cut is not None:
        text = text[: cut.start()]
        setattr(found, cut.lastgroup or "quote", True)
    if ">" in text:
        text, quoted = _QUOTED_LINE_RE.subn("", text)
        found.quote = found.quote or quoted > 0
    kept = text.split("\n")
    greeting = _drop_greeting(kept)
    signoff = _drop_signoff(kept)
    found.signature = found.signature or signoff
    text = "\n".join(kept).strip() if greeting or signoff else text.strip()
    if "\n\n\n" in text:  # removed lines can leave blank lines next to each other
        text = _BLANK_RUN_RE.sub("\n\n", text)
    return text, found


def _drop_greeting(kept: list[str]) -> bool:
    first = 0 if kept[0] else next((i for i, line in enumerate(kept) if line), None)
    if first is None or not _GREETING_RE.match(kept[first]) or len(kept[first].split()) > 5:
        return False
    if not any(kept[first + 1 :]):  # never drop the only line there is
        return False
    del kept[first]
    return True


def _drop_signoff(kept: list[str]) -> bool:
    """Drop a sign-off ("Kind regards,") and the short name/title lines after it at the end of the message.

    Looks at the last ``_MAX_SIGNOFF_LINES + 1`` non-empty lines, from the end; the earliest sign-off that
    has only short lines after it and some content before it wins.
    """
    best = None
    seen = 0
    valediction = _VALEDICTION_RE.match
    for index in range(len(kept) - 1, -1, -1):
        line = kept[index]
        if not line:
            continue
        seen += 1
        if seen > _MAX_SIGNOFF_LINES + 1:
            break
        length = len(line)
        if length <= _MAX_VALEDICTION_CHARS and valediction(line) and any(kept[:index]):
            best = index
        if length > _MAX_SIGNOFF_LINE_CHARS:
            break  # a sign-off further up would have this long line after it
    if best is None:
        return False
    del kept[best:]
    return True
