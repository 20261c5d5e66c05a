# A JSON value checked as orjson would parse it without complaint, without parsing it (included
# by cityjson_lift.pyx, whose `blank`, `member_value` and `number` it uses): for the members of
# a document the reader never reads.

from libc.string cimport memchr, memcmp


cdef enum:
    DEEPEST_CHECKED = 64  # nesting a value is checked to (orjson reads deeper: left to it)


cdef Py_ssize_t checked_string(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the string opened at `i` ends, where it is ASCII text orjson reads (no control
    character, only the escapes of one character); -1 where it ends not or is not such."""
    cdef unsigned char c
    i += 1
    while i < n:
        c = p[i]
        if c == 34:
            return i + 1
        if c < 32 or c >= 128:
            return -1  # a control character (orjson refuses it), or UTF-8 (orjson checks it)
        if c == 92:
            i += 1
            if i >= n or memchr(b'"\\/bfnrt', p[i], 8) == NULL:
                return -1  # \u and anything else: orjson's to read
        i += 1
    return -1


cdef Py_ssize_t checked(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) except -2:
    """Where the JSON value at `i` ends, where it is one orjson parses without complaint
    (strings as `checked_string`, numbers as `number` reads them, nesting within
    DEEPEST_CHECKED); -1 where it is not or this cannot tell."""
    cdef unsigned char close[DEEPEST_CHECKED]
    cdef int depth = 0
    cdef unsigned char c
    while True:  # a value at `i`
        if i < 0 or i >= n:
            return -1
        c = p[i]
        if c == 123 or c == 91:
            if depth == DEEPEST_CHECKED:
                return -1
            i = blank(p, i + 1, n)
            if i < n and p[i] == c + 2:  # empty: } or ]
                i += 1
            else:
                close[depth] = c + 2
                depth += 1
                if c == 123:
                    i = key_of(p, i, n)
                continue
        elif c == 34:
            i = checked_string(p, i, n)
        elif c == 116 and i + 4 <= n and memcmp(p + i, b"true", 4) == 0:
            i += 4
        elif c == 102 and i + 5 <= n and memcmp(p + i, b"false", 5) == 0:
            i += 5
        elif c == 110 and i + 4 <= n and memcmp(p + i, b"null", 4) == 0:
            i += 4
        else:
            i = number(p, i, n, NULL)
        while i >= 0:  # after a value: the next one of its container, or the container closed
            if depth == 0:
                return i
            i = blank(p, i, n)
            if i < n and p[i] == 44:
                i = blank(p, i + 1, n)
                if close[depth - 1] == 125:
                    i = key_of(p, i, n)
                break
            if i < n and p[i] == close[depth - 1]:
                depth -= 1
                i += 1
            else:
                return -1
        if i < 0:
            return -1


cdef Py_ssize_t key_of(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the value of the member at `i` starts (`checked_string` its key); -1 where none."""
    if i >= n or p[i] != 34:
        return -1
    i = checked_string(p, i, n)
    return -1 if i < 0 else member_value(p, i, n)
