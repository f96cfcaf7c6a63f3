"""Plain-text normalisation and removal of what is not the customer's own words.

Works on lines, after HTML has been reduced to text: quoted earlier messages, signatures, mobile clients'
device lines, legal disclaimers and greeting/sign-off lines carry no signal about *this* request and would
teach a classifier the tenant's email footer instead of the customer's intent. The rules go by structure,
position and cues in the languages mail clients are localised to, and report what they removed per kind.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

from convclass.cleaning._html import BREAK, trie_pattern
from convclass.cleaning._scan import LineCollapser, WordFinder

# Code points normalisation drops, as (first, last) ranges: C0/C1 controls (except tab, newline, form feed and
# carriage return, which are whitespace), soft hyphen, zero-width, bidi and other format characters, fillers,
# variation selectors, tags, the replacement character and private-use code points except U+E000 (the line
# marker: callers remove foreign ones first).
_INVISIBLE = (
    (0x00, 0x08), (0x0B, 0x0B), (0x0E, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x34F, 0x34F), (0x61C, 0x61C),
    (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xE001, 0xF8FF), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xFFFD, 0xFFFD), (0xE0000, 0xE0FFF),
)  # fmt: skip
_LINES = LineCollapser(_INVISIBLE, BREAK)
_BLANK_RUN_RE = re.compile("\n{3,}")

# Kinds of removed text, as CleanedEmail.removed counts them.
QUOTE, SIGNATURE, DEVICE, DISCLAIMER, GREETING, HIDDEN = (
    "quote", "signature", "device", "disclaimer", "greeting", "hidden",
)  # fmt: skip

# "wrote" as reply headers say it in the languages mail clients are localised to.
_WROTE = (
    r"(?:wrote|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|schreef|escreveu|pisze|napisał|napisała"
    r"|skrev|kirjoitti|napsal|írta|написал|написала|пишет|yazdı|έγραψε)"
)
# A reply header: "On Mon, 2 Mar 2026 at 10:14, Jane <jane@x.example> wrote:" and its translations (a digit,
# of the date or time, must occur, so "On Monday I wrote:" in the customer's text is not one; Freshdesk wraps
# it in dashes), and the same header wrapped over two lines.
_REPLY_HEADER = (
    r"-*\s*(?:on|am|le|el|il giorno|il|op|em|w dniu|den|dne|dana|в)\s(?=[^\n]{0,300}\d)[^\n]{0,300}?"
    rf"(?:\b{_WROTE}\s*[:：]?\s*-*|\b(?:schrieb|schreef|skrev|kirjoitti)\s[^\n]{{0,160}}[:：])$"
    r"|on\b[^\n]{0,250}\n\s*wrote\s*:?$"
)
# "2026年3月2日(月) 10:14 Jane <jane@x.example>:": a dated line ending with an address and a colon (only tried
# on text with an "@").
_REPLY_HEADER_ADDRESS = r"(?=[^\n]{0,300}\d)[^\n<]{0,300}<[^<>\s@]+@[^<>\s]+>\s*[:：]$"
# Reply headers that end in a Chinese or Japanese "wrote" (only tried on text with CJK characters).
_REPLY_HEADER_CJK = r"[^\n]{0,200}(?:写道|寫道|のメッセージ)[:：]?$"
# Lines that end the customer's text, each starting right after a newline (searched in "\n" + text, so sre
# jumps from newline to newline). Quoted history: a reply header, a client's separator ("-----Original
# Message-----", "---------- Forwarded message ---------", "##- Reply above this line -##"), a
# forwarded-message banner, a help desk's "reply above this line", Outlook's "From:" block with "Sent:",
# "To:", "Subject:" … within four lines. Signature: a "-- " delimiter. Device: a mobile client's "Sent from
# my iPhone" in the languages it ships in.
_SEPARATOR = (
    r"[-_=*#]{2,}\s*[^\W\d_][^\n\d]{0,50}?\s*[-_=*#]{2,}$|_{10,}$"
    r"|(?:begin forwarded message|début du message réexpédié|anfang der weitergeleiteten nachricht"
    r"|inicio del mensaje reenviado|inizio messaggio inoltrato|begin doorgestuurd bericht)\s*[:：]?$"
    r"|[-#*=_ ]*(?:please )?(?:type your reply|reply) above this line\b[^\n]{0,30}$"
)
_HEADER_BLOCK = (
    r"\**(?:from|von|de|da|van|od|från|fra|lähettäjä|от|发件人|寄件者|差出人)\**\s*[:：]\s*\S[^\n]*\n"
    r"(?:[^\n]*\n){0,3}?\**(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|à|objet"
    r"|enviado(?: el)?|fecha|para|asunto|inviato|data|a|oggetto|verzonden|aan|onderwerp|wysłano|do|temat"
    r"|skickat|till|ämne|sendt|til|emne|lähetetty|vastaanottaja|aihe|отправлено|кому|тема|发送时间|收件人|主题"
    r"|送信日時|宛先|件名)\**\s*[:：]"
)
_DEVICE = (
    r"(?:sent (?:from|with|using|via) (?:my )?|get outlook for |gesendet (?:von|mit|vom|über) (?:meinem )?"
    r"|envoyé (?:de|depuis|avec) (?:mon |ma )?|obtenir outlook pour |obtener outlook para "
    r"|enviado (?:desde|con|do|pelo) (?:mi |meu |o meu )?|inviato (?:da|dal|con) (?:mio |il mio )?"
    r"|scarica outlook per |(?:verzonden|verstuurd) (?:vanaf|met|van) (?:mijn )?|skickat från (?:min )?"
    r"|sendt fra (?:min )?|lähetetty (?:laitteesta )?|wysłane (?:z|ze) (?:mojego )?|odesláno z "
    r"|отправлено (?:с|из) |στάλθηκε από |trimis de pe |poslano z |发自我的|来自我的|來自我的|從我的 ?)"
    r"[^\n]{1,40}?"
    r"|von meinem [^\n]{1,40}? gesendet|outlook für \S+ (?:beziehen|herunterladen)"
)
# Device lines that name the device first ("iPhoneから送信"): only tried on text that has CJK characters or
# one of _SUFFIXED_WORDS, and that holds one of _DEVICE_SUFFIXES.
_DEVICE_SUFFIXES = ("から送信", "からの送信", " gönderildi", " küldve", "傳送", "发送")
_DEVICE_SUFFIXED = (
    r"[^\n]{1,30}(?:から送信|からの送信|(?:'?(?:umdan|imden|dan|den)) gönderildi|(?:ról|ről) küldve"
    r"|傳送|发送)"
)
# One character class alone lets sre skip through the text; the two words are plain substring searches.
_CJK_OR_ABOVE_RE = re.compile("[\u2e80-\U0010ffff]")
_SUFFIXED_WORDS = ("gönderildi", "küldve")
# A reply header that ends with an address and a colon: its ">" and ":" (searched for from the literal ">").
_ADDRESS_END_RE = re.compile(r">\s*[:：]")


@cache
def _line_rules(address: bool, cjk_header: bool, device_suffixed: bool) -> re.Pattern[str]:
    """The line rules with only the alternatives a text can match: the costly ones scan every line.

    Compiled on first use (eight variants at most), so importing cleaning stays cheap.
    """
    headers = [_REPLY_HEADER]
    if address:
        headers.append(_REPLY_HEADER_ADDRESS)
    if cjk_header:
        headers.append(_REPLY_HEADER_CJK)
    device = f"{_DEVICE}|{_DEVICE_SUFFIXED}" if device_suffixed else _DEVICE
    return re.compile(
        rf"\n(?:(?P<{QUOTE}>{'|'.join(headers)}|{_SEPARATOR}|{_HEADER_BLOCK})"
        rf"|(?P<{SIGNATURE}>(?:--|—|__)\s*$)|(?P<{DEVICE}>(?:{device})[.!]?$))",
        re.MULTILINE,  # searched in lower-cased text: twice as fast as re.IGNORECASE
    )


def _rules_for(text: str, lowered: str) -> re.Pattern[str]:
    """The line rules for ``text`` (``lowered``: it lower-cased): an alternative joins only when what it must
    match occurs in the text (an address with its closing ">" and ":"; a CJK "wrote"; a device suffix)."""
    address = "@" in text and _ADDRESS_END_RE.search(lowered) is not None
    suffixed = not text.isascii() and (
        _CJK_OR_ABOVE_RE.search(text) is not None or any(map(text.__contains__, _SUFFIXED_WORDS))
    )
    return _line_rules(  # positional: the cache looks keyword arguments up more slowly
        address,
        suffixed and ("写道" in lowered or "寫道" in lowered or "のメッセージ" in lowered),
        suffixed and any(map(lowered.__contains__, _DEVICE_SUFFIXES)),
    )


# Legal footers: the line that holds one of these cues starts the disclaimer, which runs to the end of the
# email. Only looked for after the first of _DISCLAIMER_WORDS (every cue contains one).
_DISCLAIMER_WORDS = (
    "confiden", "disclaimer", "notice", "privileged", "intended", "register", "environment", "vertraulich",
    "geschützt", "adressat", "empfänger", "gesellschaft", "umwelt", "l'intention", "dirigido", "riservat",
    "vertrouwelijk", "uitsluitend", "konfidentiell",
)  # fmt: skip
# Searched in the lower-cased text: a trie without case classes is several times faster than one with them.
_DISCLAIMER_WORD_RE = re.compile(trie_pattern(list(_DISCLAIMER_WORDS), fold_case=False))
_DISCLAIMER_FINDER = WordFinder(tuple(word.encode() for word in _DISCLAIMER_WORDS))
_DISCLAIMER_RE = re.compile(
    r"confidentiality (?:notice|note|statement|warning)|legal (?:notice|disclaimer)"
    r"|^\W{0,3}(?:disclaimer|important notice)\b"
    r"|\bthis (?:e-?mail|message|communication|transmission)\b[^\n]{0,120}?\b(?:is|are|may be|contains?)"
    r" (?:strictly )?(?:confidential|privileged|intended (?:only|solely|for)|for the (?:sole|exclusive) use)"
    r"|\b(?:e-?mail|message)s? and any (?:files|attachments)[^\n]{0,60}?\b(?:confidential|privileged)"
    r"|the information (?:contained )?in this (?:e-?mail|message|communication)"
    r"|\b(?:not|n't) the intended recipient|\bintended only for the (?:named )?(?:recipient|addressee)"
    r"|consider the environment before printing|registered (?:office|in england|in scotland|address)\b"
    r"|\bdiese (?:e-?mail|nachricht)\b[^\n]{0,120}?\b(?:vertraulich|rechtlich geschützt)"
    r"|nicht der (?:richtige|beabsichtigte|vorgesehene) (?:adressat|empfänger)"
    r"|sitz der gesellschaft|registergericht|handelsregister|denken sie an die umwelt"
    r"|\bce (?:message|courriel|e-?mail)\b[^\n]{0,120}?\bconfidenti|l'intention exclusive"
    r"|\b(?:este|el presente) (?:mensaje|correo)\b[^\n]{0,120}?\b(?:confidencial|dirigido)"
    r"|\bquesto (?:messaggio|e-?mail)\b[^\n]{0,120}?\b(?:riservat|confidenzial)"
    r"|\bdit (?:e-?mail)?bericht\b[^\n]{0,120}?\b(?:vertrouwelijk|uitsluitend bestemd)"
    r"|\besta mensagem\b[^\n]{0,120}?\bconfidencia|\bdenna (?:e-?post|e-?mail)\b[^\n]{0,120}?\bkonfidentiell",
    re.MULTILINE,  # searched in lower-cased text
)
# _DISCLAIMER_RE tries two dozen alternatives at every character after the first cue word, most of them behind
# a \b that keeps sre from skipping ahead. Every alternative but the heading one starts with one of these
# literals, so a search for them (sre skips to their first letters) finds the only places worth trying it.
_DISCLAIMER_STARTS = (
    "confidentiality", "legal ", "this ", "email", "e-mail", "message", "the information", "not the",
    "n't the", "intended only", "consider the", "register", "diese ", "nicht der ", "sitz der",
    "handelsregister", "denken sie", "ce ", "l'intention", "este ", "el presente", "questo ", "dit ",
    "esta mensagem", "denna ",
)  # fmt: skip
_DISCLAIMER_START_RE = re.compile(trie_pattern(list(_DISCLAIMER_STARTS), fold_case=False))
# The alternative that starts at a line start: a "Disclaimer" or "Important notice" heading.
_DISCLAIMER_HEADING_WORDS = ("disclaimer", "important notice")
_DISCLAIMER_HEADING_RE = re.compile(r"^\W{0,3}(?:disclaimer|important notice)\b", re.MULTILINE)
_QUOTED_LINE_RE = re.compile(r"^>.*(?:\n|$)", re.MULTILINE)
_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening|day)|greetings|to whom it may concern"
    r"|hallo|guten (?:tag|morgen)|sehr geehrte[rs]?|liebe[rs]?|bonjour|bonsoir|madame|monsieur|hola"
    r"|buenos días|buenas tardes|estimad[oa]s?|ciao|buongiorno|gentile|salve|olá|bom dia|prezad[oa]s?"
    r"|beste|geachte|goedemorgen|goedemiddag|hej|hei|moi|dzień dobry|witam|здравствуйте|добрый день)\b"
    r"[\w .'&/-]{0,40}[,!:.]?$",
    re.IGNORECASE,
)
_VALEDICTION_RE = re.compile(
    r"^(?:(?:best|kind|kindest|warm|warmest|many|with)?\s*(?:regards|wishes|thanks)|many thanks"
    r"|thanks(?: a lot| so much| again| in advance)?|thank you(?: in advance| so much| very much)?|cheers"
    r"|sincerely|yours(?: sincerely| truly| faithfully)?|best|all the best|take care|respectfully|br|rgds"
    r"|talk soon|have a (?:nice|great|good) (?:day|weekend)"
    r"|mit freundlichen grü(?:ß|ss)en|freundliche grü(?:ß|ss)e|(?:viele|beste|liebe) grü(?:ß|ss)e|lg|vg|mfg"
    r"|gru(?:ß|ss)|grü(?:ß|ss)e|danke|vielen dank|cordialement|bien cordialement|bien à vous|salutations"
    r"|sincères salutations|merci(?: beaucoup| d'avance)?|bonne journée|amicalement|saludos(?: cordiales)?"
    r"|un saludo|atentamente|gracias|un abrazo|cordiali saluti|distinti saluti|saluti|grazie|un saluto"
    r"|(?:met )?vriendelijke groet(?:en)?|groetjes|groeten|bedankt|mvg|(?:med )?vänliga hälsningar|hälsningar"
    r"|(?:med )?venlig hilsen|vennlig hilsen|hilsen|mvh|pozdrawiam|z poważaniem|ystävällisin terveisin"
    r"|terveisin|atenciosamente|cumprimentos|obrigad[oa]|abraços|с уважением|спасибо|saygılarımla"
    r"|よろしくお願い(?:します|いたします)|谢谢|此致敬礼)[ ,.!]*$",
    re.IGNORECASE,
)
_MAX_SIGNOFF_LINES = 7
# Signature and sign-off lines repeat from email to email (a tenant's customers, a company's signature): the
# checks of a line are cached, in a small cache, so memory stays flat however many emails a process cleans.
_LINE_CACHE_SIZE = 512
_MAX_VALEDICTION_CHARS = 40
_MAX_SIGNOFF_LINE_CHARS = 80
# Signature lines, by what they hold: contact details, an address, a job title or a company's legal form.
_CONTACT_RE = re.compile(
    r"(?i:\b(?:tel|phone|mobile|mob|cell|fax|handy|móvil|movil|cellulare|tél|téléphone|telefon|telefoon|puh"
    r"|email|e-mail|web)\b\.?\s*[:.]?\s*\S)|^[TMFEP]\s*[:.]?\s*\+?\(?\d|\+\d[\d\s().-]{6,}|\d[\d\s().-]{7,}\d"
    r"|@[\w-]+\.\w|(?i:https?://|www\.)|\b[\w-]+\.(?:com|org|net|io|co|example)\b"
)
# Contact details and addresses hold a digit, an "@" or a dot; lines without any skip those regexes.
_CONTACT_HINT_RE = re.compile(r"[\d@.]")
_ADDRESS_RE = re.compile(
    r"(?i:\b(?:street|road|avenue|lane|drive|boulevard|blvd|straße|strasse|weg|platz|allee|gasse|rue|calle"
    r"|avenida|via|viale|piazza|gracht|straat|laan|plein|gatan|vej|katu|suite|p\.?o\.? box|postfach)\b"
    r"|\b(?:st|rd|ave|str|ul)\.(?!\w))|\b\d{4,5}\s+[A-ZÄÖÜ][a-zäöüß]+|\b\d{2}-\d{3}\b"
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"
)
_TITLE_RE = re.compile(
    r"(?i:\b(?:manager|director|engineer|officer|lead|head of|ceo|cto|cfo|coo|founder|president|coordinator"
    r"|assistant|consultant|specialist|analyst|administrator|executive|partner|associate|accountant|buyer|owner"
    r"|supervisor|representative|team|department|geschäftsführer(?:in)?|leiter(?:in)?|referent(?:in)?"
    r"|sachbearbeiter(?:in)?|abteilung|responsable|directeur|directrice|gérant|gerente|directora?|jefe"
    r"|responsabile|direttore|hoofd|afdeling|chef)\b)"
)
_COMPANY_RE = re.compile(
    r"\b(?:Ltd|LTD|Limited|GmbH|AG|Inc|LLC|LLP|plc|PLC|Corp|Corporation|S\.A\.|SA|S\.L\.|SL|B\.V\.|BV|N\.V\.|NV"
    r"|SARL|SAS|S\.p\.A\.|SpA|Srl|Oy|AB|A/S|KG|Co\.)(?!\w)"
)
# Words that may stand in lower case in a name or title line ("Lotte de Vries", "Head of Operations").
_NAME_CONNECTORS = frozenset(
    (
        *(
            "de",
            "da",
            "das",
            "do",
            "dos",
            "di",
            "del",
            "della",
            "van",
            "von",
            "der",
            "den",
            "het",
            "la",
            "le",
        ),
        *("les", "du", "y", "e", "et", "und", "and", "of", "&", "|", "-", "–", "—", "·", ",", "/", "(", ")"),
    )
)
_MAX_SIGNATURE_LINES = 10
_MAX_SIGNATURE_LINE_CHARS = 80
# A line with this many lower-case words (connectors aside) is prose, whatever else it holds.
_PROSE_LOWER_WORDS = 3


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
    if not text.isascii():
        text = text.replace("\xa0", " ")  # the most common non-NFKC character in mail, and cheap to replace
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
    # Invisible and other unprintable characters out, whitespace collapsed, line ends as "\n": one pass in C.
    return _LINES.collapse(text, not marked)


def html_text_to_lines(text: str) -> str:
    """Text extracted from HTML: source newlines are plain whitespace, only ``BREAK`` markers end a line."""
    return normalize(text, marked=True)


def strip_non_content(text: str) -> tuple[str, dict[str, int]]:
    """Cut quoted history, device lines, disclaimers and signatures; drop ``>`` lines and greeting lines.

    Returns the customer's text and how many pieces of each kind (``QUOTE``, ``SIGNATURE``, ``DEVICE``,
    ``DISCLAIMER``, ``GREETING``) were removed (only kinds that occurred are keys).
    """
    removed: dict[str, int] = {}  # a plain dict: most mail has nothing removed, and Counter() costs more
    # The line and disclaimer rules run on lower-cased text, with offsets that must match the text's.
    lowered = text.lower()
    if len(lowered) != len(text):  # rare: lower-casing changed the length ("İ")
        lowered = "".join(char.lower()[0] for char in text)
    cut, kinds = _cut(text, lowered, _rules_for(text, lowered))
    if cut < len(text):
        removed.update(dict.fromkeys(kinds, 1))
        text = text[:cut]
    if ">" in text:
        text, quoted = _QUOTED_LINE_RE.subn("", text)
        if quoted:
            removed[QUOTE] = removed.get(QUOTE, 0) + quoted
    kept = text.split("\n")
    changed = False
    if _drop_greeting(kept):
        removed[GREETING] = 1
        changed = True
    if _drop_signature(kept):
        removed[SIGNATURE] = removed.get(SIGNATURE, 0) + 1
        changed = True
    text = "\n".join(kept).strip() if changed else text.strip()
    if "\n\n\n" in text:  # removed lines can leave blank lines next to each other
        text = _BLANK_RUN_RE.sub("\n\n", text)
    return text, removed


def _next_line(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end == -1 else end + 1


def _cut(text: str, lowered: str, rules: re.Pattern[str]) -> tuple[int, set[str]]:
    """Where the customer's text ends (``len(text)``: nowhere), and each kind found from there on, once.

    Quoted history ends it anywhere; a signature delimiter, a device line or a disclaimer only after some
    text of the customer's. Everything after the cut goes too. ``lowered`` is ``text`` lower-cased, offset for
    offset.
    """
    cut = len(text)
    kinds: set[str] = set()
    # "\n" + text: every line, the first included, starts after a newline (offsets shift by one).
    for match in rules.finditer("\n" + lowered):
        kind = match.lastgroup or QUOTE
        if cut < len(text):
            kinds.add(kind)
        elif kind == QUOTE or text[: match.start()].strip():
            cut = match.start()
            kinds.add(kind)
    disclaimer = _disclaimer(text, lowered)
    if disclaimer < len(text):
        cut = min(cut, disclaimer)
        kinds.add(DISCLAIMER)
    return cut, kinds


def _disclaimer(text: str, lowered: str) -> int:
    """Start of the first line holding a disclaimer cue after some text (``len(text)``: none)."""
    # Every cue holds one of the words, and most mail holds none: one pass over the text rules them out.
    if not _DISCLAIMER_FINDER.occurs(lowered.encode("utf-8", "surrogatepass")):
        return len(text)
    found = _DISCLAIMER_WORD_RE.search(lowered)
    position = 0 if found is None else text.rfind("\n", 0, found.start()) + 1
    headings = any(map(lowered.__contains__, _DISCLAIMER_HEADING_WORDS))
    while found is not None and (start := _disclaimer_search(lowered, position, headings=headings)) != -1:
        line = text.rfind("\n", 0, start) + 1
        if text[:line].strip():
            return line
        position = _next_line(text, start)
    return len(text)


def _disclaimer_search(lowered: str, position: int, *, headings: bool) -> int:
    """Where ``_DISCLAIMER_RE.search(lowered, position)`` would match (-1: nowhere).

    The regex is tried only where a match can start: at the literals of ``_DISCLAIMER_STARTS`` and, when the
    text holds a heading word (``headings``), where ``_DISCLAIMER_HEADING_RE`` matches.
    """
    end = len(lowered)
    if headings and (heading := _DISCLAIMER_HEADING_RE.search(lowered, position)) is not None:
        end = heading.start()
    while (
        candidate := _DISCLAIMER_START_RE.search(lowered, position)
    ) is not None and candidate.start() < end:
        if _DISCLAIMER_RE.match(lowered, candidate.start()) is not None:
            return candidate.start()
        position = candidate.start() + 1
    return end if end < len(lowered) else -1


def _drop_greeting(kept: list[str]) -> bool:
    first = 0 if kept[0] else next((i for i, line in enumerate(kept) if line), None)
    if first is None or not _is_greeting(kept[first]):
        return False
    if not any(kept[first + 1 :]):  # never drop the only line there is
        return False
    del kept[first]
    return True


@lru_cache(maxsize=_LINE_CACHE_SIZE)
def _is_greeting(line: str) -> bool:
    return _GREETING_RE.match(line) is not None and len(line.split()) <= 5


def _drop_signature(kept: list[str]) -> bool:
    """Drop the signature at the end of the message: from a sign-off, or a block of signature-like lines.

    A sign-off ("Kind regards,") counts when only short lines follow it within the last
    ``_MAX_SIGNOFF_LINES + 1`` lines. Without one, the trailing lines that each look like part of a
    signature (``_signature_line``) go when at least one of them holds contact details, an address, a job
    title or a company's legal form, or when two or more name-like lines follow a paragraph break. Some
    text always stays before what is dropped.
    """
    start = _signoff_start(kept)
    if start is None:
        start = _signature_block_start(kept)
    if start is None:
        return False
    del kept[start:]
    return True


def _signoff_start(kept: list[str]) -> int | None:
    best = None
    seen = 0
    for index in range(len(kept) - 1, -1, -1):
        line = kept[index]
        if not line:
            continue
        seen += 1
        if seen > _MAX_SIGNOFF_LINES + 1:
            break
        length = len(line)
        if length <= _MAX_VALEDICTION_CHARS and _is_valediction(line) and any(kept[:index]):
            best = index
        if length > _MAX_SIGNOFF_LINE_CHARS:
            break  # a sign-off further up would have this long line after it
    return best


@lru_cache(maxsize=_LINE_CACHE_SIZE)
def _is_valediction(line: str) -> bool:
    return _VALEDICTION_RE.match(line) is not None


def _signature_block_start(kept: list[str]) -> int | None:
    start = None
    strong = False
    lines = 0
    for index in range(len(kept) - 1, -1, -1):
        line = kept[index]
        if not line:
            continue
        kind = _signature_line(line)
        if not kind:
            break
        lines += 1
        if lines > _MAX_SIGNATURE_LINES:
            return None
        strong = strong or kind > 1
        start = index
    if start is None or not any(kept[:start]):
        return None
    if strong:
        return start
    # Only name-like lines: a signature when there are several and a paragraph break sets them apart.
    return start if lines >= 2 and start > 0 and not kept[start - 1] else None


@lru_cache(maxsize=_LINE_CACHE_SIZE)
def _signature_line(line: str) -> int:
    """2 for a line with a strong signature cue, 1 for a name-like line, 0 for anything else."""
    if len(line) > _MAX_SIGNATURE_LINE_CHARS or line[-1] in "?!:;":
        return 0
    words = line.replace("|", " | ").split()
    if line[-1] == "." and len(words) > 3 and not _COMPANY_RE.search(line):
        return 0  # a sentence
    lower = sum(1 for word in words if word[0].islower() and word.lower() not in _NAME_CONNECTORS)
    if lower >= _PROSE_LOWER_WORDS:
        return 0
    if _CONTACT_HINT_RE.search(line) and (_CONTACT_RE.search(line) or _ADDRESS_RE.search(line)):
        return 2
    if len(words) > 7:
        return 0
    if not _name_like(words):
        return 0
    return 2 if _TITLE_RE.search(line) or _COMPANY_RE.search(line) else 1


def _name_like(words: list[str]) -> bool:
    """Every word capitalised, a connector ("de", "of", "|") or without letters; or one short CJK name."""
    if len(words) == 1 and not words[0].isascii():
        word = words[0]
        if len(word) <= 8 and word.isalpha() and not any(c.isupper() or c.islower() for c in word):
            return True  # a name in a script without case (李娜)
    for word in words:
        if word.lower().strip(",") in _NAME_CONNECTORS:
            continue
        first = next((c for c in word if c.isalpha()), None)
        if first is not None and not first.isupper():
            return False
    return True
