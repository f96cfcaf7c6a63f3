"""HTML → plain text that keeps the email's paragraph and line structure.

selectolax's lexbor backend parses with a spec-compliant C parser (the error recovery browsers use); most
mail never needs it. One compiled pass (``_scan.WordFinder``) finds every word that decides which rules an
email needs, another (``_scan.TagTable.scan``) reads its tags and joins the text between them; the rest is
C-speed string work (``bytes.find``, compiled regexes) or a CSS query that runs only when the markup contains
its trigger words. ``benchmarks/bench_preprocess.py`` measures the whole cleaning pipeline against
BeautifulSoup on the same corpus.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Collection
from functools import cache

from selectolax.lexbor import LexborHTMLParser, LexborNode

from convclass.cleaning._scan import TagTable, WordFinder

#: Line-break marker inserted at block boundaries. clean_email removes it from the input first, so every
#: marker in the extracted text is ours; source newlines are just whitespace, as in browsers.
BREAK = "\ue000"
_BREAK_BYTES = BREAK.encode("utf-8")
_DROP_TAGS = ["head", "script", "style", "noscript", "template", "title", "svg", "iframe", "object", "embed"]
# Hidden content (pre-headers, tracking blocks): elements whose style hides them (``hidden_style``) or that
# carry ``hidden`` / ``aria-hidden="true"``. Each selector finds candidates and only joins the query when its
# trigger occurs in the lower-cased markup, because attribute-substring selectors are the most expensive part
# of a query; ``hidden_style`` then decides.
_HIDDEN_RULES = (
    (b"display:none", '[style*="display:none" i]'),
    (b"display: none", '[style*="display: none" i]'),
    (b"visibility:hidden", '[style*="visibility:hidden" i]'),
    (b"visibility: hidden", '[style*="visibility: hidden" i]'),
    (b"mso-hide", '[style*="mso-hide" i]'),
    (b"height:0", '[style*="height:0" i]'),
    (b"height: 0", '[style*="height: 0" i]'),
    (b"size:0", '[style*="size:0" i]'),
    (b"size: 0", '[style*="size: 0" i]'),
    (b"opacity:0", '[style*="opacity:0" i]'),
    (b"opacity: 0", '[style*="opacity: 0" i]'),
    (b"aria-hidden", '[aria-hidden="true"]'),
    (b" hidden", "[hidden]"),
)
_HIDDEN_TRIGGERS = tuple(trigger for trigger, _ in _HIDDEN_RULES)
_ZERO = rb"\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:!important\s*)?(?:;|$)"
# Declarations that hide an element whatever else its style says (max-height:0 is how pre-headers collapse).
_HIDING_STYLE_RE = re.compile(
    rb"(?:^|[;\s\"'])(?:display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all|max-height"
    + _ZERO
    + rb"|font-size"
    + _ZERO
    + rb"|opacity"
    + _ZERO
    + rb")"
)
# A zero height or width hides an element's text only together with overflow:hidden.
_ZERO_BOX_RE = re.compile(rb"(?:^|[;\s\"'])(?:height|width|max-width)" + _ZERO)
_OVERFLOW_HIDDEN_RE = re.compile(rb"overflow\s*:\s*hidden")
# Containers mail clients put a signature or device line in: Gmail, Thunderbird, Outlook (web, mobile),
# Apple Mail on iOS. Only looked for when the markup contains "signature".
_SIGNATURE_HINT = b"signature"
_SIGNATURES = (
    '.gmail_signature, [data-smartmail="gmail_signature"], .moz-signature, [id="signature" i],'
    ' [id="x_signature" i], #ms-outlook-mobile-signature, [id="applemailsignature" i], .yahoo-signature,'
    " .signature"
)
# The same containers and _QUOTES, as lower-cased attribute values for the byte-level cut (prune_elements).
_SIGNATURE_CLASSES = frozenset((b"gmail_signature", b"moz-signature", b"yahoo-signature", b"signature"))
_SIGNATURE_IDS = frozenset((b"signature", b"x_signature"))
_DEVICE_IDS = frozenset((b"ms-outlook-mobile-signature", b"applemailsignature"))
_QUOTE_CLASSES = frozenset(
    (b"gmail_quote", b"gmail_extra", b"yahoo_quoted", b"moz-cite-prefix", b"protonmail_quote")
)
_QUOTE_MARKERS = (b"blockquote", *_QUOTE_CLASSES, b"appendonsend", b"cite")
# Quoted earlier messages as clients mark them (Gmail, Yahoo, Thunderbird, Apple Mail, plain blockquote).
_QUOTES = (
    "blockquote, .gmail_quote, .gmail_extra, .yahoo_quoted, .moz-cite-prefix, [type=cite],"
    " #appendonsend, .protonmail_quote"
)
# Outlook puts the quoted message *after* its reply header: drop the header and everything that follows.
_OUTLOOK_HEADERS = "#divRplyFwdMsg, #x_divRplyFwdMsg, .OutlookMessageHeader"
# Attribute values that open a client's quoted history, and the tags that carry them.
_HISTORY_ATTRIBUTES = (b"gmail_quote", b"divrplyfwdmsg", b"moz-cite-prefix", b"yahoo_quoted", b'type="cite"')
_HISTORY_TAGS = (b"div", b"blockquote", b"table", b"span", b"p ", b"p>")
_HISTORY_TEXT = (b"-----original message-----", "-----ursprüngliche nachricht-----".encode())
# Every quote trigger, history marker and Outlook header id contains one of these words, and most mail
# contains none of them: four searches of the markup rule out fourteen.
_QUOTE, _CITE, _REPLY, _DASHES = b"quote", b"cite", b"divrplyfwdmsg", b"-----"
_MARKER_HINTS = (_QUOTE, _CITE, _REPLY, _DASHES)
_OUTLOOK_HEADER_CLASS, _APPEND_ON_SEND, _GMAIL_EXTRA = (
    b"outlookmessageheader",
    b"appendonsend",
    b"gmail_extra",
)
# Every word whose presence decides which rules below an email needs (the marker hints first): one compiled
# pass finds them all (_HINTS), where a search per word would read the markup twenty times.
_HINT_WORDS = (
    *_MARKER_HINTS, *_HIDDEN_TRIGGERS, _SIGNATURE_HINT, _OUTLOOK_HEADER_CLASS, _APPEND_ON_SEND, _GMAIL_EXTRA,
)  # fmt: skip
_HINTS = WordFinder(_HINT_WORDS)

_BLOCK_NAMES = [
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article",
    "header", "footer", "address", "dd", "dt", "dl", "form", "center", "fieldset", "figure", "figcaption",
    "main", "nav", "aside", "caption", "blockquote", "br", "hr",
]  # fmt: skip
# Elements whose end tag HTML requires: more or fewer end tags than start tags means broken markup.
_NEEDS_CLOSE = [
    "a", "abbr", "b", "big", "blockquote", "button", "center", "code", "div", "em", "font", "form", "h1",
    "h2", "h3", "h4", "h5", "h6", "i", "label", "ol", "pre", "s", "script", "section", "select", "small",
    "span", "strike", "strong", "style", "sub", "sup", "table", "textarea", "title", "u", "ul",
]  # fmt: skip


#: Browsers' parsers (lexbor included) slow down quadratically with nesting depth; markup nested deeper than
#: this (far beyond any real email) is reduced to text without a tree, and reported as malformed.
MAX_DEPTH = 512
_DEPTH_CHECK_TAGS = 2 * MAX_DEPTH
_PRUNABLE = frozenset((b"div", b"span", b"font", b"center", b"blockquote"))
_PRUNED_BLOCKS = frozenset((b"div", b"center", b"blockquote"))
_ATTRIBUTE_RE = re.compile(rb"""([a-z][a-z0-9:_-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_TAG_NAME_ENDS = frozenset((b" ", b"\t", b"\n", b"\r", b"\f", b"/", b">"))
_VOID = frozenset(
    b"area base br col embed hr img input link meta param source track wbr !doctype o:p".split()
)
# The tag regexes, one per job (each reads lower-cased markup):
# - _CANDIDATE_START_TAG_RE (prune_elements): the start tag at a candidate offset, name and attributes
#   captured;
# - _DEPTH_TAG_RE (_nesting_depth): end-tag slash, name and self-closing slash of every tag;
# - _BRACKETED_RE (simple_text's fallback): anything from "<" to the next ">", what the fast path deletes;
# - _FLAT_MARKUP_RE (_flat_text): the same plus comments, for markup too deep for a tree.
# _TAGS.scan ends a tag name where HTML's tokenizer ends it (whitespace, "/" or ">"), as _BLOCK_TAG_RE does,
# so both agree on its element: "<div-x>" and "<p.x>" are not the elements "div" and "p".
_CANDIDATE_START_TAG_RE = re.compile(rb"<([a-z][a-z0-9:]*)((?:\s[^<>]*)?)/?>")
_DEPTH_TAG_RE = re.compile(rb"<(/?)([a-z!][a-z0-9:]*)(?:[^<>]*?(/)?)?>")
_BRACKETED = rb"<[^<>]*>"
_BRACKETED_RE = re.compile(_BRACKETED)
_FLAT_MARKUP_RE = re.compile(_BRACKETED + rb"|<!--.*?-->", re.DOTALL)
_SCRIPT_STYLE_RE = re.compile(rb"<(script|style|head)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


_Trie = dict[str, "_Trie"]


def trie_pattern(words: list[str], *, fold_case: bool) -> str:
    """Regex alternation of ``words`` as a trie, optionally with explicit ``[aA]`` classes.

    sre tries alternatives one by one and ``re.IGNORECASE`` folds every character it compares; a trie with
    explicit classes does one comparison per character and runs about twice as fast on mail markup.
    """
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: _Trie) -> str:
        branches = []
        for char, child in sorted(node.items()):
            if char == "":
                continue
            cls = f"[{char}{char.upper()}]" if fold_case and char.isalpha() else re.escape(char)
            branches.append(cls + render(child))
        if not branches:
            return ""
        return f"(?:{'|'.join(branches)}){'?' if '' in node else ''}"

    return render(trie)


# A marker goes into the markup *before* parsing, in front of every block start and end tag (so inside the
# element, before its end tag): one regex pass instead of a DOM walk. Inside tables, only cell end tags get
# one (and the table start tag, which sits outside it): a marker between rows would be text in table context,
# which parsers move in front of the table ("foster parenting"). So every cell ends a line.
_BLOCK_TAG_RE = re.compile(
    rf"<(?=(?:/?{trie_pattern(_BLOCK_NAMES, fold_case=True)}|{trie_pattern(['table'], fold_case=True)}"
    rf"|/{trie_pattern(['td', 'th'], fold_case=True)})[\s/>])".encode()
)
_MARKED_TAG = _BREAK_BYTES + b"<"
# Elements whose markup parses to exactly its text: see simple_text.
_SIMPLE_TAGS = frozenset(
    b"html body div p br span b i u a font strong em small big sub sup li ul ol h1 h2 h3 h4 h5 h6 hr o:p img"
    b" wbr center table tbody thead tfoot tr td th".split()
)
# Regexes that start with a literal "<" let sre jump between tags, far faster than one substring search per
# tag name.
_DROP_TAG_RE = re.compile(rf"<{trie_pattern(_DROP_TAGS, fold_case=False)}\b".encode())
_TABLE_NAMES = ["table", "tbody", "thead", "tfoot", "tr", "td", "th"]
_BLOCK_INSIDE_RE = re.compile(
    rf"</?{trie_pattern([*_BLOCK_NAMES, *_TABLE_NAMES], fold_case=False)}[\s/>]".encode()
)
_BLOCK_NAMES_BYTES = [name.encode() for name in _BLOCK_NAMES]
# Tag names as _TAGS.scan reads them ("<div", "</div"), looked up in C: the simple elements, the tags
# _BLOCK_TAG_RE marks (each ends a line), and start tag → end tag of the elements in _NEEDS_CLOSE.
_SIMPLE_TAG_KEYS = frozenset(prefix + name for name in _SIMPLE_TAGS for prefix in (b"<", b"</"))
_LINE_ENDING_TAGS = frozenset(
    (*(prefix + name for name in _BLOCK_NAMES_BYTES for prefix in (b"<", b"</")), b"<table", b"</td", b"</th")
)
_END_TAG_OF = {b"<" + name.encode(): b"</" + name.encode() for name in _NEEDS_CLOSE}
_TAGS = TagTable(_SIMPLE_TAG_KEYS, _LINE_ENDING_TAGS, _END_TAG_OF)


def markup_issues(lowered: bytes, unbalanced: int) -> int:
    """Count signs of malformed markup: unbalanced elements, unterminated tags and comments.

    The parser repairs all of these silently (as browsers do); counting them lets the dataset manifest report
    how much of a tenant's mail arrived broken. ``lowered`` is the UTF-8 markup, ASCII-lower-cased, and
    ``unbalanced`` what ``_TAGS.scan`` counted of its elements.
    """
    issues = unbalanced
    if lowered.find(b"<!--") != -1:
        issues += max(0, lowered.count(b"<!--") - lowered.count(b"-->"))
    if lowered.rfind(b"<") > lowered.rfind(b">"):
        issues += 1  # a tag cut off at the end
    return issues


def cut_quoted_history(lowered: bytes, hints: tuple[bytes, ...] | list[bytes] = _MARKER_HINTS) -> int:
    """Return where a mail client's quoted history starts (``len(lowered)`` when it has none).

    Quoted history is usually most of an email's bytes and everything after these markers is quoted: cutting
    before parsing keeps cleaning time proportional to what the customer wrote. Only markers that contain one
    of ``hints`` (the ``_MARKER_HINTS`` found in ``lowered``) are looked for.
    """
    cut = len(lowered)
    for marker in _containing_any(_HISTORY_ATTRIBUTES, tuple(hints)):
        start = scanned = 0
        tag_start = tag_end = -1
        while (found := lowered.find(marker, start, cut)) != -1:
            # The last "<" and ">" before the marker, searched for only since the previous marker: linear in
            # the markup however many markers it repeats.
            tag_start = max(tag_start, lowered.rfind(b"<", scanned, found))
            tag_end = max(tag_end, lowered.rfind(b">", scanned, found))
            scanned = found
            if tag_start > tag_end and lowered.startswith(_HISTORY_TAGS, tag_start + 1):
                cut = tag_start
                break
            start = found + len(marker)
    if _DASHES in hints:
        for marker in _HISTORY_TEXT:
            found = lowered.find(marker, 0, cut)
            if found != -1:
                cut = found
    return cut


class Removed:
    """What ``html_to_text`` removed from the markup: quoted blocks, hidden elements, signature containers."""

    __slots__ = ("devices", "hidden", "quoted", "signatures")

    def __init__(self, quoted: int = 0) -> None:
        self.quoted = quoted
        self.hidden = 0
        self.signatures = 0
        self.devices = 0  # containers of a mobile client's "Sent from my …" line


def html_to_text(html: bytes) -> tuple[str, Removed, int]:
    """Return ``(text, removed, markup_issues)``; block boundaries in ``text`` are ``BREAK``.

    ``html`` is UTF-8 markup. All string scans run over ``bytes.lower()`` of it (ASCII-only lower-casing keeps
    offsets aligned), and lexbor parses UTF-8 bytes without another conversion.
    """
    lowered = html.lower()
    body = lowered.find(b"<body")
    if body > 0:  # nothing in <head> is text: skip it (Outlook's style sheets are kilobytes long)
        html, lowered = html[body:], lowered[body:]
    # The hint words of the whole markup rule out most rules; cutting and pruning only ever remove text.
    offsets = _HINTS.first_offsets(lowered)
    hints = [hint for hint, offset in zip(_MARKER_HINTS, offsets, strict=False) if offset != -1]
    cut = cut_quoted_history(lowered, hints) if hints else len(lowered)
    quoted = 0
    if cut < len(html):
        html, lowered = html[:cut], lowered[:cut]
        quoted = 1
    # A word's first occurrence is in what the cut kept, or the word is not.
    present = {
        word for word, offset in zip(_HINT_WORDS, offsets, strict=True) if -1 < offset <= cut - len(word)
    }
    removed = Removed(quoted)
    # When it was cut short before quoted history, elements still open at the cut are expected.
    tags, unbalanced, simple, joined = _TAGS.scan(html, lowered, _BREAK_BYTES, quoted > 0)
    issues = markup_issues(lowered, unbalanced)
    if tags > _DEPTH_CHECK_TAGS and _nesting_depth(lowered) > MAX_DEPTH:
        return _flat_text(html), removed, issues + 1
    triggers = hidden_triggers(lowered, present)
    signatures = _SIGNATURE_HINT in present
    outlook = _REPLY in present or _OUTLOOK_HEADER_CLASS in present
    quotes = _QUOTE in present or _CITE in present or _APPEND_ON_SEND in present or _GMAIL_EXTRA in present
    if (triggers or signatures or quotes) and not (issues or outlook):
        pruned = prune_elements(html, lowered, triggers, signatures=signatures, quotes=quotes)
        if pruned is not None:
            if pruned[0] is not html:  # something was cut: the tags are those of the new markup
                html, lowered, elements = pruned
                tags, _, simple, joined = _TAGS.scan(html, lowered, _BREAK_BYTES)
                removed.hidden, removed.signatures, removed.devices = (
                    elements.hidden,
                    elements.signatures,
                    elements.devices,
                )
                removed.quoted += elements.quoted
            triggers, signatures, quotes = {}, False, False
    hidden = _hidden_selector(lowered, triggers) if triggers else ""
    if not (hidden or outlook or quotes or signatures):
        text = simple_text(html, lowered, tags, simple, joined)
        if text is not None:
            return text, removed, issues
    marked = _BLOCK_TAG_RE.sub(_MARKED_TAG, html)
    text = tree_text(
        marked, lowered, removed, hidden=hidden, outlook=outlook, quotes=quotes, signatures=signatures
    )
    return text, removed, issues


def simple_text(html: bytes, lowered: bytes, tags: int, simple: bool, joined: bytes | None) -> str | None:
    """Text of markup made only of ``_SIMPLE_TAGS`` (no comments, tables, hidden or quoted parts), or None.

    For such markup the tree's text is exactly "tags removed, character references decoded", so the fast path
    skips lexbor's fixed cost per document, which is most of the time a short email takes. One difference
    is kept on purpose: text a malformed table holds outside its cells stays in place, where the parser would
    move it in front of the table. ``tests/unit/test_cleaning_properties.py`` checks that both paths agree.
    ``tags``, ``simple`` and ``joined`` are what ``_TAGS.scan`` read of the markup.
    """
    if not simple:
        return None
    if joined is not None:
        # Every "<" opens a plain tag, so a block tag's name says where a line ends: no marker pass is needed.
        text = joined
        if text.find(b">") != -1:
            return None  # a stray ">" between tags: markup that is not tags and text alone goes to the tree
    else:
        opened = lowered.count(b"<")
        if lowered.count(b">") != opened or tags != opened or len(_BRACKETED_RE.split(html)) != opened + 1:
            return None
        # rare: a name such as "<div-x>" is not the element its prefix names
        text = _BRACKETED_RE.sub(b"", _BLOCK_TAG_RE.sub(_MARKED_TAG, html))
    decoded = text.decode("utf-8", errors="replace")
    if "&" not in decoded:
        return decoded
    # Outlook writes every empty paragraph as "&nbsp;": replacing it directly spares html.unescape a Python
    # callback per reference (the replacement contains no "&", so it cannot form or split another reference).
    return _html.unescape(decoded.replace("&nbsp;", "\xa0"))


def tree_text(
    marked: bytes,
    lowered: bytes,
    removed: Removed | None = None,
    *,
    hidden: str = "",
    outlook: bool = True,
    quotes: bool = True,
    signatures: bool = True,
) -> str:
    """Text of ``marked`` markup through lexbor's tree; what it drops is added to ``removed``.

    ``hidden`` is the candidate selector ``_hidden_selector`` built (empty: none).
    """
    removed = removed if removed is not None else Removed()
    tree = LexborHTMLParser(marked)
    if _DROP_TAG_RE.search(lowered) is not None:  # rare once <head> is skipped
        tree.strip_tags(_DROP_TAGS)
    root = tree.body
    if root is None:
        return ""
    if hidden:
        for node in _last_first(root.css(hidden)):
            if _node_is_hidden(node.attributes):
                node.decompose()
                removed.hidden += 1
    if outlook:
        header = root.css_first(_OUTLOOK_HEADERS)
        if header is not None:
            _drop_from(header, root)
            removed.quoted += 1
    if quotes:
        for node in _last_first(root.css(_QUOTES)):
            node.decompose()
            removed.quoted += 1
    if signatures:
        for node in _last_first(root.css(_SIGNATURES)):
            if node.id is not None and node.id.lower().encode() in _DEVICE_IDS:
                removed.devices += 1
            else:
                removed.signatures += 1
            node.decompose()
    return root.text(deep=True, separator="")


def _last_first(nodes: list[LexborNode]) -> list[LexborNode]:
    """Matches of a selector list without repeats (lexbor lists an element once per selector it matches), last
    first: an element is removed before any element that contains it, and never twice."""
    unique = {node.mem_id: node for node in nodes}
    return list(reversed(unique.values()))


def hidden_style(style: bytes) -> bool:
    """Whether an inline ``style`` (lower-cased bytes) hides its element's text."""
    if _HIDING_STYLE_RE.search(style) is not None:
        return True
    return _ZERO_BOX_RE.search(style) is not None and _OVERFLOW_HIDDEN_RE.search(style) is not None


def _node_is_hidden(attributes: dict[str, str | None]) -> bool:
    if "hidden" in attributes or attributes.get("aria-hidden") == "true":
        return True
    style = attributes.get("style")
    return style is not None and hidden_style(style.lower().encode("utf-8", errors="replace"))


@cache
def _containing_any(words: tuple[bytes, ...], hints: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The ``words`` that contain one of ``hints``, in order.

    Depends only on which hints a document holds (a few combinations occur), so it is worked out once per
    combination instead of once per word and document.
    """
    return tuple(word for word in words if any(hint in word for hint in hints))


def prune_elements(
    html: bytes, lowered: bytes, triggers: dict[bytes, list[int]], *, signatures: bool, quotes: bool
) -> tuple[bytes, bytes, Removed] | None:
    """Cut hidden elements, signature containers and quoted blocks out of well-formed markup.

    They are common (pre-headers, Gmail and Outlook signatures, inline quotes), and cutting them from the
    bytes keeps such mail on the tree-free path: a document's first CSS query costs more than parsing it.
    Candidates are the tags around the hidden ``triggers`` (``hidden_triggers``), around "signature" (when
    ``signatures``) and the quote markers (when ``quotes``). Returns ``(html, lowered, removed)`` (the markup
    given when nothing was cut), or None (use the tree) when an element to cut is of a kind the bytes cannot
    cut safely or its end tag cannot be found.
    """
    candidates: dict[int, list[int]] = {}
    for wanted, markers in ((signatures, (_SIGNATURE_HINT,)), (quotes, _QUOTE_MARKERS)):
        if wanted:
            triggers = {**triggers, **{marker: _find_all(lowered, marker) for marker in markers}}
    positions = sorted(position for found in triggers.values() for position in found)
    for start, position in zip(_tag_starts(lowered, positions), positions, strict=True):
        candidates.setdefault(start, []).append(position)
    spans: list[tuple[int, int, bytes]] = []
    removed = Removed()
    for candidate in sorted(candidates):
        start_tag = _CANDIDATE_START_TAG_RE.match(lowered, candidate)
        if start_tag is None or (spans and candidate < spans[-1][1]):
            continue  # not a start tag, or inside an element already cut
        if all(position >= start_tag.end() for position in candidates[candidate]):
            continue  # the trigger is text after the tag, not one of its attributes
        name = start_tag.group(1)
        kind = "" if name in _VOID else _element_kind(name, start_tag.group(2))
        if not kind:
            continue
        if name not in _PRUNABLE:
            return None
        end = _closing_end(lowered, name, start_tag.end())
        if end == -1:
            return None
        if name not in _PRUNED_BLOCKS and _BLOCK_INSIDE_RE.search(lowered, start_tag.end(), end):
            return None  # a block inside an inline element can close its parents and escape it
        spans.append((candidate, end, name))
        setattr(removed, kind, getattr(removed, kind) + 1)
    if not spans:
        return html, lowered, removed  # triggers, but nothing they hide ("line-height:0")
    # A block element leaves the line break its start tag's marker would have left in the parsed tree.
    html_parts: list[bytes] = []
    lowered_parts: list[bytes] = []
    last = 0
    for start, end, name in spans:
        gap = _BREAK_BYTES if name in _PRUNED_BLOCKS else b""
        html_parts += [html[last:start], gap]
        lowered_parts += [lowered[last:start], gap]
        last = end
    html = b"".join([*html_parts, html[last:]])
    return html, b"".join([*lowered_parts, lowered[last:]]), removed


def _find_all(lowered: bytes, marker: bytes) -> list[int]:
    positions = []
    found = lowered.find(marker)
    while found != -1:
        positions.append(found)
        found = lowered.find(marker, found + len(marker))
    return positions


def _element_kind(name: bytes, attributes: bytes) -> str:
    """Which ``Removed`` count an element with these (lower-cased) attributes goes to; "" to keep it."""
    if _attributes_hide(attributes):
        return "hidden"
    if name == b"blockquote":
        return "quoted"
    for attribute, double, single, bare in _ATTRIBUTE_RE.findall(attributes):
        value = double or single or bare
        if attribute == b"class":
            tokens = value.split()
            if any(token in _SIGNATURE_CLASSES for token in tokens):
                return "signatures"
            if any(token in _QUOTE_CLASSES for token in tokens):
                return "quoted"
        elif attribute == b"id":
            if value in _DEVICE_IDS:
                return "devices"
            if value in _SIGNATURE_IDS:
                return "signatures"
            if value == b"appendonsend":
                return "quoted"
        elif (attribute == b"data-smartmail" and value == b"gmail_signature") or (
            attribute == b"type" and value == b"cite"
        ):
            return "signatures" if attribute == b"data-smartmail" else "quoted"
    return ""


def _attributes_hide(attributes: bytes) -> bool:
    """Whether a start tag's (lower-cased) attributes hide its element: see ``_node_is_hidden``."""
    for attribute, double, single, bare in _ATTRIBUTE_RE.findall(attributes):
        value = double or single or bare
        if attribute == b"style" and hidden_style(value):
            return True
        if attribute == b"hidden" or (attribute == b"aria-hidden" and value == b"true"):
            return True
    return False


def hidden_triggers(lowered: bytes, present: Collection[bytes] = _HIDDEN_TRIGGERS) -> dict[bytes, list[int]]:
    """Offsets of each hidden trigger that occurs in ``lowered`` (only triggers in ``present`` are looked for:
    html_to_text knows which occur)."""
    triggers = {}
    for trigger in _HIDDEN_TRIGGERS:
        if trigger in present and (found := _find_all(lowered, trigger)):
            triggers[trigger] = found
    return triggers


def _tag_starts(lowered: bytes, positions: list[int]) -> list[int]:
    """The offset of the last "<" before each of the sorted ``positions`` (-1: none), in one linear scan."""
    starts = []
    last = -1
    scanned = 0
    for position in positions:
        last = max(last, lowered.rfind(b"<", scanned, position))
        scanned = max(scanned, position)
        starts.append(last)
    return starts


def _closing_end(lowered: bytes, name: bytes, position: int) -> int:
    """Offset just past the end tag that closes an element ``name`` opened before ``position``, or -1."""
    depth = 1
    opening, closing = b"<" + name, b"</" + name
    while depth:
        close = lowered.find(closing, position)
        if close == -1:
            return -1
        nested = lowered.find(opening, position, close)
        if nested != -1 and lowered[nested + len(opening) : nested + len(opening) + 1] in _TAG_NAME_ENDS:
            depth += 1
            position = nested + len(opening)
            continue
        depth -= 1
        position = close + len(closing)
    end = lowered.find(b">", position)
    return -1 if end == -1 else end + 1


def _hidden_selector(lowered: bytes, triggers: dict[bytes, list[int]]) -> str:
    """CSS selector for the candidate hidden elements of this markup; empty when it has none.

    Attribute-substring selectors are the most expensive part of a query, so only the rules whose trigger
    (of ``triggers``, from ``hidden_triggers``) occurs in a tag other than ``<img>`` join it (hidden images,
    such as tracking pixels, have no text anyway).
    """
    return ", ".join(
        selector
        for trigger, selector in _HIDDEN_RULES
        if trigger in triggers
        and any(not lowered.startswith(b"<img", start) for start in _tag_starts(lowered, triggers[trigger]))
    )


def _nesting_depth(lowered: bytes) -> int:
    """Deepest element nesting (void elements and self-closing tags do not nest)."""
    depth = deepest = 0
    for closing, name, self_closing in _DEPTH_TAG_RE.findall(lowered):
        if closing:
            depth = max(0, depth - 1)
        elif name not in _VOID and not self_closing:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def _flat_text(html: bytes) -> str:
    """Text of pathologically nested markup without building a tree: tags become spaces, entities decode."""
    html = _SCRIPT_STYLE_RE.sub(b" ", html)
    return _html.unescape(_FLAT_MARKUP_RE.sub(b" ", html).decode("utf-8", errors="replace"))


def _drop_from(node: LexborNode, root: LexborNode) -> None:
    """Remove ``node`` and everything after it in document order (Outlook quotes follow its reply header)."""
    current: LexborNode | None = node
    while current is not None and current.mem_id != root.mem_id:
        sibling = current.next
        while sibling is not None:
            following = sibling.next
            sibling.decompose()
            sibling = following
        current = current.parent
    node.decompose()
