# Included by cityjson_lift.pyx: JSON text followed byte by byte, only as far as the lift needs
# (where a string, a value, a member ends; whether it is valid JSON is orjson's to say).


cdef bint holds_nul_escape(const unsigned char *p, Py_ssize_t n) noexcept:
    """Whether the bytes hold the text \\u0000 (the placeholders'), found from the backslashes,
    which JSON's text rarely has (memchr), where a search for all six bytes took 0.4 ms of
    Den Haag's 3 MB."""
    cdef const unsigned char *q = p
    cdef const unsigned char *end = p + n
    while True:
        q = <const unsigned char *>memchr(q, 92, end - q)
        if q == NULL:
            return False
        if end - q >= 6 and memcmp(q, b"\\u0000", 6) == 0:
            return True
        q += 1


cdef inline Py_ssize_t blank(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (p[i] == 32 or p[i] == 10 or p[i] == 13 or p[i] == 9):
        i += 1
    return i


cdef Py_ssize_t after_string(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the string opened at `i` ends (after its quote); -1 where it does not."""
    i += 1
    while i < n:
        if p[i] == 92:  # a backslash: the next byte is escaped
            i += 2
        elif p[i] == 34:
            return i + 1
        else:
            i += 1
    return -1


cdef Py_ssize_t after_value(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the value at `i` ends; -1 where it does not. Only strings and brackets are
    followed: whether the value is valid JSON is orjson's to say."""
    cdef int depth = 0
    cdef unsigned char c
    if i >= n:
        return -1
    if p[i] == 34:
        return after_string(p, i, n)
    if p[i] != 91 and p[i] != 123:  # a number or a literal: up to its delimiter
        while i < n and not (p[i] == 44 or p[i] == 93 or p[i] == 125 or p[i] <= 32):
            i += 1
        return i
    while i < n:
        c = p[i]
        if c == 34:
            i = after_string(p, i, n)
            if i < 0:
                return -1
            continue
        if c == 91 or c == 123:
            depth += 1
        elif c == 93 or c == 125:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


cdef enum:
    NEXT = 1  # a comma: another member follows
    CLOSED = 0  # the object or array closed
    BROKEN = -1  # anything else: orjson's to judge


cdef int after_member(
    const unsigned char *p, Py_ssize_t *i, Py_ssize_t n, unsigned char close
) noexcept:
    """After a member's value at `i[0]`: NEXT with `i[0]` at the next member, CLOSED with it past
    `close`, or BROKEN."""
    cdef Py_ssize_t at = blank(p, i[0], n)
    if at < n and p[at] == 44:
        i[0] = blank(p, at + 1, n)
        return NEXT
    if at < n and p[at] == close:
        i[0] = at + 1
        return CLOSED
    return BROKEN


cdef Py_ssize_t member_value(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the value of the member whose key ends at `i` starts (past the colon); -1 where
    no colon and value follow."""
    i = blank(p, i, n)
    if i >= n or p[i] != 58:
        return -1
    i = blank(p, i + 1, n)
    return i if i < n else -1
