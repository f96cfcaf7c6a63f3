# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Single passes over an email's bytes, compiled: each answers in one pass what took a dozen Python-level scans.

Cleaning's rules stay in ``_html.py`` and ``_text.py``; this module answers the questions they ask of every
email: where each hint word first occurs (``WordFinder``), what the tags add up to and the text between them
(``TagTable``), and the text with invisible characters dropped and whitespace collapsed (``LineCollapser``).
Each docstring states the exact result, which ``tests/unit/test_cleaning_scan.py`` holds it to. Built with
GCC or Clang (``__builtin_ctzll``), as on every Linux target convclass runs on.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

cdef enum:
    # The most words a WordFinder takes (one bit each in a 64-bit mask).
    MAX_NEEDLES = 64
    # Tag names with their "<" or "</" ("</figcaption" is 12 bytes); longer names are in no table.
    MAX_NAME = 16
    # A power of two, several times the names a table holds.
    TABLE_SLOTS = 512
    # The most code point ranges a LineCollapser drops.
    MAX_RANGES = 64


cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil


cdef class WordFinder:
    """Finds where each of a fixed set of words first occurs in some bytes, all words in one pass.

    Which of cleaning's rules an email needs depends on a few dozen hint words, and most mail holds none of
    them: one pass finds them all. The words are bytes of two bytes or more, at most 64 of them.
    """

    cdef tuple words
    cdef const unsigned char* starts[MAX_NEEDLES]
    cdef Py_ssize_t lengths[MAX_NEEDLES]
    cdef Py_ssize_t count
    # The words whose first (second) byte is b, one bit each: a position is a candidate only for the words
    # whose first two bytes it holds, which rules out all but a few positions of mail.
    cdef uint64_t by_first[256]
    cdef uint64_t by_second[256]

    def __init__(self, tuple words):
        cdef Py_ssize_t k
        if len(words) > MAX_NEEDLES:
            raise ValueError(f"a WordFinder takes at most {MAX_NEEDLES} words")
        self.words = words  # keeps the bytes that starts[] points into alive
        self.count = len(words)
        memset(self.by_first, 0, sizeof(self.by_first))
        memset(self.by_second, 0, sizeof(self.by_second))
        for k in range(self.count):
            word = words[k]
            if not isinstance(word, bytes) or len(word) < 2:
                raise ValueError(f"WordFinder words are bytes of two bytes or more, not {word!r}")
            self.starts[k] = <const unsigned char*> PyBytes_AS_STRING(word)
            self.lengths[k] = PyBytes_GET_SIZE(word)
            self.by_first[self.starts[k][0]] |= (<uint64_t> 1) << k
            self.by_second[self.starts[k][1]] |= (<uint64_t> 1) << k

    def occurs(self, bytes data):
        """Whether any of the words occurs in ``data``."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data), i, k
        cdef const unsigned char* text = <const unsigned char*> PyBytes_AS_STRING(data)
        cdef uint64_t candidates
        for i in range(size - 1):
            candidates = self.by_first[text[i]] & self.by_second[text[i + 1]]
            while candidates:
                k = __builtin_ctzll(candidates)
                candidates &= candidates - 1
                if self.lengths[k] <= size - i and memcmp(text + i, self.starts[k], self.lengths[k]) == 0:
                    return True
        return False

    def first_offsets(self, bytes data):
        """``[data.find(word) for word in words]``."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data), i, k
        cdef const unsigned char* text = <const unsigned char*> PyBytes_AS_STRING(data)
        cdef Py_ssize_t found[MAX_NEEDLES]
        cdef uint64_t pending, candidates
        pending = ((<uint64_t> 1) << self.count) - 1 if self.count < 64 else ~(<uint64_t> 0)
        for k in range(self.count):
            found[k] = -1
        for i in range(size - 1):
            candidates = self.by_first[text[i]] & self.by_second[text[i + 1]] & pending
            while candidates:
                k = __builtin_ctzll(candidates)
                candidates &= candidates - 1
                if self.lengths[k] <= size - i and memcmp(text + i, self.starts[k], self.lengths[k]) == 0:
                    found[k] = i
                    pending &= ~((<uint64_t> 1) << k)
            if not pending:
                break
        return [found[k] for k in range(self.count)]


cdef inline bint _lower_letter(unsigned char c) noexcept:
    return <unsigned char> (c - 97) < 26


cdef inline bint _lower_name_char(unsigned char c) noexcept:
    return _lower_letter(c) or <unsigned char> (c - 48) < 10 or c == 58  # ":"


cdef inline bint _ends_name(unsigned char c) noexcept:
    # what ends a tag name in HTML's tokenizer: whitespace (as a bytes regex's \s), "/" or ">"
    return c == 32 or (9 <= c <= 13) or c == 47 or c == 62


cdef struct _Entry:
    char name[MAX_NAME]
    Py_ssize_t length
    uint32_t flags
    int element  # index of the element whose start and end tags are paired, or -1
    bint closing


cdef inline uint32_t _hash(const unsigned char* name, Py_ssize_t length) noexcept:
    cdef uint32_t h = 2166136261u
    cdef Py_ssize_t i
    for i in range(length):
        h = (h ^ name[i]) * 16777619u
    return h


cdef class TagTable:
    """What cleaning needs to know of a tag name (``b"<div"``, ``b"</div"``), looked up in C.

    ``simple``: the names of elements whose markup parses to exactly its text; ``separated``: the names that
    end a line; ``paired``: start tag → end tag of the elements HTML requires to be closed.
    """

    cdef _Entry entries[TABLE_SLOTS]
    cdef int elements

    def __init__(self, simple, separated, paired):
        memset(self.entries, 0, sizeof(self.entries))
        for name in simple:
            self._add(name, 1, -1, False)
        for name in separated:
            self._add(name, 2, -1, False)
        self.elements = 0
        for start, end in dict(paired).items():
            self._add(start, 0, self.elements, False)
            self._add(end, 0, self.elements, True)
            self.elements += 1

    cdef void _add(self, bytes name, uint32_t flags, int element, bint closing) except *:
        cdef Py_ssize_t length = PyBytes_GET_SIZE(name)
        cdef _Entry* entry
        if not 0 < length < MAX_NAME:
            raise ValueError(f"tag name {name!r} is not 1 to {MAX_NAME - 1} bytes long")
        entry = self._slot(<const unsigned char*> PyBytes_AS_STRING(name), length)
        if entry.length == 0:
            memcpy(entry.name, PyBytes_AS_STRING(name), length)
            entry.length = length
            entry.element = -1
        entry.flags |= flags
        if element >= 0:
            entry.element = element
            entry.closing = closing

    cdef _Entry* _slot(self, const unsigned char* name, Py_ssize_t length) noexcept:
        """The entry of ``name``, or the empty slot where it would go."""
        cdef uint32_t slot = _hash(name, length) & (TABLE_SLOTS - 1)
        cdef _Entry* entry
        while True:
            entry = &self.entries[slot]
            if entry.length == 0 or (entry.length == length and memcmp(entry.name, name, length) == 0):
                return entry
            slot = (slot + 1) & (TABLE_SLOTS - 1)

    cdef inline _Entry* _lookup(self, const unsigned char* name, Py_ssize_t length) noexcept:
        cdef _Entry* entry
        if length >= MAX_NAME:
            return NULL
        entry = self._slot(name, length)
        return NULL if entry.length == 0 else entry

    def scan(self, bytes html, bytes lowered, bytes separator, bint cut_short=False):
        """``(tags, unbalanced, simple, text)`` of the markup ``html`` (``lowered``: ``html.lower()``), in one pass.

        Its tag names are every ``</?[a-z][a-z0-9:]*`` of ``lowered`` (``b"<div"``, ``b"</div"``): ``tags``
        counts them; ``simple`` says whether every one is in ``simple``; ``unbalanced`` counts, per ``paired``
        element, the difference between its start and end tags when it has start tags (when ``cut_short``,
        only surplus end tags: the cut left elements open), else its end tags. When every "<" opens a plain
        tag (its name ends where HTML's tokenizer ends it, at whitespace, "/" or ">", and no other "<" comes
        before its ">"), ``text`` is the text between the tags, joined with ``separator`` where a
        ``separated`` tag was; else None.
        """
        cdef Py_ssize_t size = PyBytes_GET_SIZE(html), separator_length = PyBytes_GET_SIZE(separator)
        cdef Py_ssize_t last = 0, position = 0, opening, name_end, close, at = 0, tags = 0
        cdef const char* raw = PyBytes_AS_STRING(html)
        cdef const unsigned char* low = <const unsigned char*> PyBytes_AS_STRING(lowered)
        cdef const unsigned char* found
        cdef int opened[TABLE_SLOTS]
        cdef int closed[TABLE_SLOTS]
        cdef bint simple = True, plain = True
        cdef _Entry* entry
        cdef char* out
        if PyBytes_GET_SIZE(lowered) != size:
            raise ValueError("lowered must be html.lower()")
        memset(opened, 0, sizeof(int) * self.elements)
        memset(closed, 0, sizeof(int) * self.elements)
        # A tag takes at least three bytes ("<a>"), so the text never outgrows this.
        text = PyBytes_FromStringAndSize(NULL, size + (size // 3 + 1) * separator_length)
        out = PyBytes_AS_STRING(text)
        while True:
            found = <const unsigned char*> memchr(low + position, 60, size - position)  # "<"
            if found == NULL:
                break
            opening = found - low
            name_end = opening + 1
            if name_end < size and low[name_end] == 47:  # "/"
                name_end += 1
            if name_end >= size or not _lower_letter(low[name_end]):
                plain = False
                break
            while name_end < size and _lower_name_char(low[name_end]):
                name_end += 1
            if name_end >= size or not _ends_name(low[name_end]):
                plain = False
                break
            found = <const unsigned char*> memchr(low + name_end, 62, size - name_end)  # ">"
            if found == NULL or memchr(low + name_end, 60, found - low - name_end) != NULL:
                plain = False  # a tag left open, or a "<" inside one: not every "<" opens a tag
                break
            close = found - low
            memcpy(out + at, raw + last, opening - last)
            at += opening - last
            entry = self._lookup(low + opening, name_end - opening)
            tags += 1
            if entry == NULL:
                simple = False
            else:
                simple = simple and entry.flags & 1
                if entry.flags & 2:
                    memcpy(out + at, PyBytes_AS_STRING(separator), separator_length)
                    at += separator_length
                if entry.element >= 0:
                    if entry.closing:
                        closed[entry.element] += 1
                    else:
                        opened[entry.element] += 1
            last = position = close + 1
        if plain:
            memcpy(out + at, raw + last, size - last)
            at += size - last
            text = text[:at]
        else:
            text = None
            tags = 0
            simple = True
            memset(opened, 0, sizeof(int) * self.elements)
            memset(closed, 0, sizeof(int) * self.elements)
            position = 0
            while True:
                found = <const unsigned char*> memchr(low + position, 60, size - position)
                if found == NULL:
                    break
                opening = found - low
                name_end = opening + 1
                if name_end < size and low[name_end] == 47 and name_end + 1 < size and _lower_letter(low[name_end + 1]):
                    name_end += 1
                if name_end >= size or not _lower_letter(low[name_end]):
                    position = opening + 1
                    continue
                while name_end < size and _lower_name_char(low[name_end]):
                    name_end += 1
                position = name_end
                tags += 1
                entry = self._lookup(low + opening, name_end - opening)
                if entry == NULL:
                    simple = False
                    continue
                simple = simple and entry.flags & 1
                if entry.element >= 0:
                    if entry.closing:
                        closed[entry.element] += 1
                    else:
                        opened[entry.element] += 1
        return tags, self._unbalanced(opened, closed, cut_short), simple, text

    cdef int _unbalanced(self, int* opened, int* closed, bint cut_short) noexcept:
        cdef int element, missing, issues = 0
        for element in range(self.elements):
            if opened[element]:
                missing = opened[element] - closed[element]
                if missing < 0:
                    issues -= missing
                elif not cut_short:
                    issues += missing
            else:
                issues += closed[element]
        return issues


cdef extern from "Python.h":
    bint Py_UNICODE_ISSPACE(Py_UCS4 ch)
    bint Py_UNICODE_ISPRINTABLE(Py_UCS4 ch)
    object PyUnicode_FromKindAndData(int kind, const void* buffer, Py_ssize_t size)


cdef enum:
    _CHAR, _SPACE, _BREAK


cdef class LineCollapser:
    """Drops invisible characters and collapses whitespace of text in one pass over its code points.

    ``invisible``: sorted, disjoint ``(first, last)`` code point ranges to drop; ``line_break``: the character
    that ends a line. ``collapse`` returns what these steps in turn would: drop the ``invisible`` characters
    and every other character that is neither printable nor whitespace nor ``line_break``;
    ``" ".join(text.split())``; drop the spaces next to a ``line_break``; turn each run of two or more
    ``line_break`` into a blank line (``"\\n\\n"``) and each single one into ``"\\n"``; ``strip()``.
    """

    cdef Py_UCS4 firsts[MAX_RANGES]
    cdef Py_UCS4 lasts[MAX_RANGES]
    cdef Py_ssize_t count
    cdef bint ascii_invisible[128]
    cdef Py_UCS4 line_break

    def __init__(self, invisible, str line_break):
        cdef Py_ssize_t code
        ranges = sorted((int(first), int(last)) for first, last in invisible)
        if len(ranges) > MAX_RANGES:
            raise ValueError(f"a LineCollapser takes at most {MAX_RANGES} ranges")
        self.count = len(ranges)
        for code, (first, last) in enumerate(ranges):
            self.firsts[code] = first
            self.lasts[code] = last
        self.line_break = ord(line_break)
        for code in range(128):
            self.ascii_invisible[code] = self._in_ranges(<Py_UCS4> code)

    cdef bint _in_ranges(self, Py_UCS4 code) noexcept:
        cdef Py_ssize_t low = 0, high = self.count, middle
        while low < high:
            middle = (low + high) // 2
            if code < self.firsts[middle]:
                high = middle
            elif code > self.lasts[middle]:
                low = middle + 1
            else:
                return True
        return False

    def collapse(self, str text, bint newline_breaks=False):
        """The collapsed ``text``; with ``newline_breaks``, ``"\\n"`` also ends a line."""
        cdef Py_ssize_t size = len(text), at = 0, i
        cdef Py_UCS4 code
        cdef bint started = False, space = False
        cdef int breaks = 0, kind
        # At most one character out per character in: a separator replaces at least one.
        cdef bytearray buffer = bytearray(size * sizeof(Py_UCS4))
        cdef Py_UCS4* out = <Py_UCS4*> <char*> buffer
        for i in range(size):
            code = text[i]
            if code < 128:
                if self.ascii_invisible[code]:
                    continue
                if code == 10 and newline_breaks:
                    kind = _BREAK
                elif code == 32 or 9 <= code <= 13:
                    kind = _SPACE
                else:
                    kind = _CHAR
            elif code == self.line_break:
                kind = _BREAK
            elif self._in_ranges(code):
                continue
            elif Py_UNICODE_ISSPACE(code):
                kind = _SPACE
            elif not Py_UNICODE_ISPRINTABLE(code):
                continue
            else:
                kind = _CHAR
            if kind == _SPACE:
                space = space or not breaks
            elif kind == _BREAK:
                breaks += 1
                space = False
            else:
                if started and breaks:
                    out[at] = 10
                    at += 1
                    if breaks > 1:
                        out[at] = 10
                        at += 1
                elif started and space:
                    out[at] = 32
                    at += 1
                breaks = 0
                space = False
                out[at] = code
                at += 1
                started = True
        return PyUnicode_FromKindAndData(4, out, at)
