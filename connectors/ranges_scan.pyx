# cython: language_level=3, boundscheck=False, wraparound=False
"""Whether a window of whole members stands alone (citygml_members._alone), compiled.

The Python scan runs a bytes search per word, a loop over the members' names and two regex
findalls per member: about 0.36 s of a 105 MB range, a fifth of the child's work on two
cores. This is the same scan in C over the mapped bytes (memmem for the words and names, the
regexes' matches by hand, a member's ids in a hash table), member by member, with the same
verdict on any bytes: matches bounded where the regexes' pos/endpos bound them, the tag tests'
64-byte look back.
"""

from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp

cdef extern from "string.h" nogil:
    void *memmem(const void *haystack, size_t n, const void *needle, size_t m)

cdef enum:
    PIECE = 1 << 16  # bytes of a window read at once where its links are not checked

cdef struct Spans:
    Py_ssize_t *at  # offset, length pairs
    Py_ssize_t n, cap


cdef int push(Spans *spans, Py_ssize_t value) except -1:
    if spans.n == spans.cap:
        spans.cap = 2 * spans.cap + 64
        spans.at = <Py_ssize_t *>realloc(spans.at, spans.cap * sizeof(Py_ssize_t))
        if spans.at == NULL:
            raise MemoryError()
    spans.at[spans.n] = value
    spans.n += 1
    return 0


cdef inline Py_ssize_t find(const unsigned char *d, Py_ssize_t at, Py_ssize_t end,
                            const char *word, Py_ssize_t n, Py_ssize_t rare) noexcept nogil:
    """The offset of `word` within d[at:end], or -1: by memchr for its byte `rare`, a byte
    rare in GML, where memmem's two-byte hashing is slower on short words (-1: memmem)."""
    cdef const unsigned char *p
    cdef const unsigned char *last = d + end - n + rare
    if end - at < n:
        return -1
    if rare < 0:
        p = <const unsigned char *>memmem(d + at, end - at, word, n)
        return -1 if p == NULL else p - d
    p = d + at + rare
    while True:
        p = <const unsigned char *>memchr(p, word[rare], last - p + 1)
        if p == NULL:
            return -1
        if memcmp(p - rare, word, n) == 0:
            return p - rare - d
        p += 1
        if p > last:
            return -1


cdef inline bint name_char(unsigned char c) noexcept nogil:
    """[\\w.-] of a bytes regex: a namespace prefix's byte."""
    return (c >= b'a' and c <= b'z') or (c >= b'A' and c <= b'Z') or (c >= b'0' and c <= b'9') \
        or c == b'_' or c == b'.' or c == b'-'


cdef inline bint space(unsigned char c) noexcept nogil:
    return c == b' ' or (c >= 9 and c <= 13)


cdef inline Py_ssize_t prefixed(const unsigned char *d, Py_ssize_t i) noexcept nogil:
    """Where `(?:[\\w.-]+:)?\\Z` ends its look back from `i` (no prefix: `i`; -1: none fits),
    within the 64 bytes before `i`."""
    cdef Py_ssize_t lo = i - 64 if i > 64 else 0, j = i - 1
    if j < lo or d[j] != b':':
        return i
    j -= 1
    while j >= lo and name_char(d[j]):
        j -= 1
    return -1 if j == i - 2 else j + 1


cdef Py_ssize_t opened(const unsigned char *d, Py_ssize_t i, Py_ssize_t size) noexcept nogil:
    """citygml_members._tag_start: where the member's start tag whose name is at `i` begins."""
    cdef Py_ssize_t lo = i - 64 if i > 64 else 0, j = prefixed(d, i) - 1
    cdef unsigned char after
    if j < lo or d[j] != b'<' or i + 16 >= size:
        return -1
    after = d[i + 16]
    if after == b' ' or after == b'\t' or after == b'\r' or after == b'\n' or after == b'>':
        return j
    return -1


cdef bint closed(const unsigned char *d, Py_ssize_t i) noexcept nogil:
    """Whether an end tag's `</` and prefix come right before the name at `i`."""
    cdef Py_ssize_t lo = i - 64 if i > 64 else 0, j = prefixed(d, i) - 1
    return j - 1 >= lo and d[j] == b'/' and d[j - 1] == b'<'


cdef Py_ssize_t quoted(const unsigned char *d, Py_ssize_t q, Py_ssize_t end, bint hash_,
                       Py_ssize_t *value) noexcept nogil:
    """`\\s*=\\s*["']#?([^"']*)["']` from `q` within d[:end] (`#?` where `hash_`): the match's end
    with the group's start in value[0], its end in value[1]; -1 where it does not match."""
    while q < end and space(d[q]):
        q += 1
    if q >= end or d[q] != b'=':
        return -1
    q += 1
    while q < end and space(d[q]):
        q += 1
    if q >= end or (d[q] != b'"' and d[q] != b"'"):
        return -1
    q += 1
    if hash_ and q < end and d[q] == b'#':
        q += 1
    value[0] = q
    while q < end and d[q] != b'"' and d[q] != b"'":
        q += 1
    value[1] = q
    return -1 if q >= end else q + 1


cdef inline Py_ssize_t matched(const unsigned char *d, Py_ssize_t q, Py_ssize_t a,
                               Py_ssize_t b, const char *key, Py_ssize_t n, bint hash_,
                               Spans *out) except -2:
    """Where the match of `key` + `quoted`'s regex ends whose `=` is at `q`, its group pushed
    to `out` (-1: none there), starting at `a` or after."""
    cdef Py_ssize_t value[2]
    cdef Py_ssize_t j = q - 1, i, e
    while j >= a and space(d[j]):
        j -= 1
    i = j - n + 1
    if i < a or memcmp(d + i, key, n) != 0:
        return -1
    e = quoted(d, i + n, b, hash_, value)
    if e >= 0:
        push(out, value[0])
        push(out, value[1] - value[0])
    return e


cdef int links_of(const unsigned char *d, Py_ssize_t a, Py_ssize_t b, Spans *hrefs,
                  Spans *ids) except -1:
    """The groups of `href` (a `#` dropped) and of `:id`, each with `quoted`'s regex, in d[a:b],
    as re.findall(data, a, b) finds each: one pass over the `=`s for both.

    Looked for from their `=`, about a fifth as frequent in GML as the `:` of ":id" (which every
    prefixed tag has: NRW's tile 17,523 against 88,432), memchr stopping at each: a match is
    the key and blanks before an `=` (one match of a key at most: neither key has a border, so
    none overlaps another of its key), starting where that key's last match ended or after; a
    candidate `quoted` refuses leaves no match before the next `=`, as the regex, moving on a
    byte at a time, finds none there. Each key's findall looks at every `=` from where its last
    match ended plus its length, so both are looked for at each `=` past their own."""
    cdef Py_ssize_t after_href = a, after_id = a, next_href = a + 4, next_id = a + 3, q, e
    cdef const unsigned char *p = d + a + 3
    cdef const unsigned char *stop = d + b
    hrefs.n = ids.n = 0
    while p < stop:
        p = <const unsigned char *>memchr(p, b'=', stop - p)
        if p == NULL:
            break
        q = p - d
        if q >= next_href:
            e = matched(d, q, after_href, b, b"href", 4, True, hrefs)
            if e >= 0:
                after_href, next_href = e, e + 4
        if q >= next_id:
            e = matched(d, q, after_id, b, b":id", 3, False, ids)
            if e >= 0:
                after_id, next_id = e, e + 3
        p += 1
    return 0


cdef inline size_t fnv(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    cdef size_t h = 1469598103934665603ULL
    cdef Py_ssize_t k
    for k in range(n):
        h = (h ^ p[k]) * 1099511628211ULL
    return h


cdef Py_ssize_t slot(const unsigned char *d, Py_ssize_t *table, size_t mask, Py_ssize_t at,
                     Py_ssize_t n) noexcept nogil:
    """The slot of the id d[at:at+n] in `table` (offsets of ids, -1: empty): its own or the
    empty one it would take (the table is never full)."""
    cdef size_t s = fnv(d + at, n) & mask
    cdef Py_ssize_t *ids = table + mask + 1  # the ids' lengths
    while table[s] >= 0 and (ids[s] != n or memcmp(d + table[s], d + at, n) != 0):
        s = (s + 1) & mask
    return s


cdef bint linked_inside(const unsigned char *d, Spans *hrefs, Spans *ids,
                        Spans *table) except -1:
    """Whether every href's target is among the ids (a set of the member's ids)."""
    cdef size_t cap = 16, s
    cdef Py_ssize_t k
    while cap < <size_t>ids.n:  # at least twice the ids: ids.n counts two per id
        cap *= 2
    if <size_t>table.cap < 2 * cap:
        table.cap = 2 * cap
        table.at = <Py_ssize_t *>realloc(table.at, table.cap * sizeof(Py_ssize_t))
        if table.at == NULL:
            raise MemoryError()
    for k in range(cap):
        table.at[k] = -1
    for k in range(0, ids.n, 2):
        s = slot(d, table.at, cap - 1, ids.at[k], ids.at[k + 1])
        table.at[s] = ids.at[k]
        table.at[cap + s] = ids.at[k + 1]
    for k in range(0, hrefs.n, 2):
        if table.at[slot(d, table.at, cap - 1, hrefs.at[k], hrefs.at[k + 1])] < 0:
            return False
    return True


cdef struct Word:
    const char *at
    Py_ssize_t n, rare, limit  # limit: where the window's search for it ends


cdef bint any_word(const unsigned char *d, Word *words, Py_ssize_t count, Py_ssize_t a,
                   Py_ssize_t s) noexcept nogil:
    """Whether a word starts in d[a:s] (within its limit): the window's words looked for
    piece by piece, each piece's bytes in the cache for every word after the first."""
    cdef Py_ssize_t k
    for k in range(count):
        if find(d, a, min(s - 1 + words[k].n, words[k].limit), words[k].at, words[k].n,
                words[k].rare) >= 0:
            return True
    return False


def alone(const unsigned char[::1] data, Py_ssize_t begin, Py_ssize_t end, tuple words,
          bint links):
    """citygml_members._alone: whether data[begin:end] (whole members) stands alone.

    Read in one pass of pieces (a member each where the links are checked, else `PIECE`
    bytes): each piece's words, member tags and links looked for while it is in the cache,
    where each was a pass over the whole window (8 MB, beyond a core's cache), the links' hrefs
    and ids two of them (the 422 MB file's child range as its child scans it: 324 -> 245 ms)."""
    cdef const unsigned char *d = &data[0]
    cdef Py_ssize_t size = data.shape[0], count = len(words), k = 0, i, s, a = begin
    cdef bint inside = False
    cdef Word found[8]
    cdef Spans hrefs = Spans(NULL, 0, 0), ids = Spans(NULL, 0, 0), table = Spans(NULL, 0, 0)
    if count > 8:
        raise ValueError("at most 8 words")
    for word, rare in words:  # a word is looked for where its byte `rare` is in the window
        found[k].at, found[k].n, found[k].rare = word, len(word), rare
        found[k].limit = end if rare < 0 else min(end - rare + found[k].n - 1, size)
        k += 1
    if not links:
        while a < end:
            s = min(a + PIECE, end)
            if any_word(d, found, count, a, s):
                return False
            a = s
        return True
    try:
        i = find(d, begin, end, b"cityObjectMember", 16, 4)
        while True:  # citygml_members._member_starts: a member checked once the next starts
            s = -1
            while i >= 0 and s < 0:
                if not inside:
                    s = opened(d, i, size)
                    if s < 0:
                        return False
                elif not closed(d, i):
                    return False
                inside = not inside
                i = find(d, i + 16, end, b"cityObjectMember", 16, 4)
            if s < 0:  # no member starts after a
                if inside:
                    return False
                s = end
            if any_word(d, found, count, max(a, begin), s):  # a tag may open before begin
                return False
            links_of(d, a, s, &hrefs, &ids)
            if hrefs.n and not linked_inside(d, &hrefs, &ids, &table):
                return False
            if s == end:
                return True
            a = s
    finally:
        free(hrefs.at)
        free(ids.at)
        free(table.at)
