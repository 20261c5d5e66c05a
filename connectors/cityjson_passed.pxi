# A geometry's semantics, material and texture lifted out of a document's bytes (included by
# cityjson_lift.pyx, whose `Vec`, `after_string`, `after_value` and `digits` it uses).
#
# The reader passes these through to a record's properties (`cityjson:semantics`,
# `cityjson:appearance`) and reads of the semantics only each surface's value and type: parsed
# by orjson they are a dict per surface and a list per shell, freed again after being written
# back as the same text. A value whose text is exactly what orjson would write of it
# (`canonical`) is lifted: the walk hands on its text (orjson.Fragment) and reads a semantics'
# values and types from the arrays filled here. Any other (blanks, a float orjson would write
# otherwise, an escape it would not write, a key given twice) stays for orjson to parse.


cdef enum:
    DEEPEST_CANONICAL = 64  # nesting a value is checked to (orjson reads deeper: left to it)
    KEYS_CHECKED = 256  # keys of the objects open at once that are checked for repeats
    TYPE_NAMES = 64  # distinct semantic surface types a document's lifted semantics name


cdef struct Passing:
    Vec semantics  # rows of SEM columns (cityjson_boundaries.pxi)
    Vec members  # rows of MEMBER columns
    Vec values  # semantic values, -1 for null
    Vec codes  # each surface's type, as its place in `names`
    Vec texts  # (start, end, longest string) of each material or texture lifted
    Py_ssize_t names[TYPE_NAMES][2]  # where each type's text starts and ends
    int named


cdef void free_passing(Passing *s) noexcept:
    free(s.semantics.data)
    free(s.members.data)
    free(s.values.data)
    free(s.codes.data)
    free(s.texts.data)


cdef Py_ssize_t canonical_string(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the string opened at `i` ends, where orjson writes it as it is (ASCII, no control
    character, only the escapes orjson writes: no \\/ nor \\u); -1 otherwise."""
    cdef unsigned char c
    i += 1
    while i < n:
        c = p[i]
        if c == 34:
            return i + 1
        if c < 32 or c >= 128:
            return -1
        if c == 92:
            i += 1
            if i >= n or memchr(b'"\\bfnrt', p[i], 7) == NULL:
                return -1
        i += 1
    return -1


cdef Py_ssize_t canonical_number(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Where the number at `i` ends, where orjson writes the value it parses as this text: an
    integer within int64 (not -0), or a float written as Python's repr and orjson write it
    (no exponent, 1e-4 <= |x| < 1e16, no trailing zero but in ".0"), which its text is where
    it has at most 15 significant digits (any such decimal is the shortest that gives its
    double: two of them never give the same one); -1 otherwise."""
    cdef bint negative = p[i] == 45
    cdef uint64_t value = 0
    cdef Py_ssize_t start, fraction, significant
    if negative:
        i += 1
    start = i
    if i >= n or not 48 <= p[i] <= 57:
        return -1
    if p[i] == 48:
        i += 1
    else:
        i = digits(p, i, n, negative, &value)
        if i < 0:
            return -1
    if i < n and (p[i] == 101 or p[i] == 69 or 48 <= p[i] <= 57):
        return -1  # an exponent, or a leading zero
    if i >= n or p[i] != 46:
        return -1 if negative and value == 0 else i
    significant = 0 if value == 0 else i - start
    i += 1
    fraction = i
    while i < n and 48 <= p[i] <= 57:
        i += 1
    if i == fraction or (i < n and (p[i] == 101 or p[i] == 69)):
        return -1
    if i - fraction == 1 and p[fraction] == 48:
        return i if significant <= 15 else -1  # x.0
    if p[i - 1] == 48:
        return -1  # a trailing zero: repr has none
    if value == 0:
        while p[fraction] == 48:  # leading zeros: 1e-4 at the least
            fraction += 1
        if fraction - start - 2 > 3:
            return -1
    return i if significant + i - fraction <= 15 else -1


cdef Py_ssize_t canonical(
    const unsigned char *p, Py_ssize_t i, Py_ssize_t n, int64_t *longest
) except -2:
    """Where the JSON value at `i` ends, where orjson writes what it parses of it as this very
    text: no blanks, strings as `canonical_string`, numbers as `canonical_number`, no key
    given twice in an object, nesting within DEEPEST_CANONICAL; -1 otherwise. `longest`: the
    most bytes a string value in it takes (escapes and all: at least its UTF-8's)."""
    cdef unsigned char close[DEEPEST_CANONICAL]
    cdef Py_ssize_t opened[DEEPEST_CANONICAL]  # where each open object's keys start in `keys`
    cdef Py_ssize_t keys[KEYS_CHECKED]  # where each key of the open objects starts
    cdef Py_ssize_t sizes[KEYS_CHECKED]
    cdef Py_ssize_t named = 0, end, k
    cdef int depth = 0
    longest[0] = 0
    cdef unsigned char c
    while True:  # a value at `i`, or a key where an object's member starts
        if i < 0 or i >= n:
            return -1
        c = p[i]
        if depth and close[depth - 1] == 125 and (p[i - 1] == 123 or p[i - 1] == 44):
            end = canonical_string(p, i, n) if c == 34 else -1  # a key: given once, then ':'
            if end < 0 or end >= n or p[end] != 58 or named == KEYS_CHECKED:
                return -1
            for k in range(opened[depth - 1], named):
                if sizes[k] == end - i and memcmp(p + keys[k], p + i, end - i) == 0:
                    return -1
            keys[named], sizes[named] = i, end - i
            named += 1
            i = end + 1
            continue
        if c == 123 or c == 91:
            if depth == DEEPEST_CANONICAL or i + 1 >= n:
                return -1
            if p[i + 1] == c + 2:  # empty: } or ]
                i += 2
            else:
                close[depth], opened[depth] = c + 2, named
                depth += 1
                i += 1
                continue
        elif c == 34:
            end = canonical_string(p, i, n)
            if end - i - 2 > longest[0]:
                longest[0] = end - i - 2
            i = end
        elif c == 116 and i + 4 <= n and memcmp(p + i, b"true", 4) == 0:
            i += 4
        elif c == 102 and i + 5 <= n and memcmp(p + i, b"false", 5) == 0:
            i += 5
        elif c == 110 and i + 4 <= n and memcmp(p + i, b"null", 4) == 0:
            i += 4
        else:
            i = canonical_number(p, i, n)
        while i >= 0:  # after a value: the next one of its container, or the container closed
            if depth == 0:
                return i
            if i < n and p[i] == 44:
                i += 1
                break
            if i < n and p[i] == close[depth - 1]:
                depth -= 1
                named = opened[depth]
                i += 1
            else:
                return -1
        if i < 0:
            return -1


cdef Py_ssize_t lift_text(Passing *s, const unsigned char *p, Py_ssize_t i, Py_ssize_t n) except -2:
    """Lift a material or texture at `i` where it is `canonical`: a row of `s.texts`, where its
    text starts and ends, its longest string; where it ends, or -1."""
    cdef int64_t row[3]
    cdef Py_ssize_t end = canonical(p, i, n, &row[2])
    if end >= 0:
        row[0], row[1] = i, end
        push_row(&s.texts, row, 3)
    return end


cdef Py_ssize_t semantic_values(
    Passing *s, const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *end
) except -2:
    """Push the values of the array at `i` (canonical) onto `s.values`, where each is an
    integer (within int64, not negative) or null, and where it ends onto `end`; how many, or
    -1."""
    cdef Py_ssize_t count = 0
    cdef uint64_t value
    i += 1
    end[0] = i + 1
    if p[i] == 93:
        return 0
    while True:
        if p[i] == 110:
            push(&s.values, -1)
            i += 4
        elif 48 <= p[i] <= 57:
            i = digits(p, i, n, False, &value)
            if i < 0 or p[i] == 46:
                return -1
            push(&s.values, <int64_t>value)
        else:
            return -1
        count += 1
        if p[i] == 93:
            end[0] = i + 1
            return count
        i += 1  # a comma


cdef int type_code(Passing *s, const unsigned char *p, Py_ssize_t i, Py_ssize_t end) noexcept:
    """The code of the type whose text (a string without escapes) is p[i:end], added to
    `s.names` where new; -1 where no more fit."""
    cdef int k
    for k in range(s.named):
        if s.names[k][1] - s.names[k][0] == end - i and memcmp(p + s.names[k][0], p + i, end - i) == 0:
            return k
    if s.named == TYPE_NAMES:
        return -1
    s.names[s.named][0], s.names[s.named][1] = i, end
    s.named += 1
    return s.named - 1


cdef Py_ssize_t surfaces(
    Passing *s, const unsigned char *p, Py_ssize_t i, Py_ssize_t n, int64_t *row
) except -2:
    """Read the semantic surfaces of the array at `i` (canonical) into `row`: whether one says
    more than its type, and the code of each's type (S_SURFACES -1 where one is not an object
    with a string type, written without escapes); where the array ends."""
    cdef Py_ssize_t key, end, members, count = 0
    cdef int code
    cdef bint typed = True
    i += 1
    while p[i] != 93:
        if p[i] != 123:
            typed = False
            i = after_value(p, i, n)
        else:
            i, members, code = i + 1, 0, -1
            while p[i] == 34:
                key = i + 1
                i = after_string(p, i, n)
                end = after_value(p, i + 1, n)
                members += 1
                if i - key == 5 and memcmp(p + key, b"type", 4) == 0 and p[i + 1] == 34:
                    if memchr(p + i + 2, 92, end - i - 3) == NULL:
                        code = type_code(s, p, i + 2, end - 1)
                i = end + (p[end] == 44)
            i += 1  # }
            row[S_RICH] |= members > 1
            if code < 0:
                typed = False
            else:
                push(&s.codes, code)
        count += 1
        i += p[i] == 44
    row[S_SURFACES] = count if typed else -1
    return i + 1


cdef Py_ssize_t lift_semantics(
    Passing *s, const unsigned char *p, Py_ssize_t i, Py_ssize_t n
) except -2:
    """Lift the semantics object at `i` where it is `canonical` (its values and surfaces read
    where they are as the walk reads them, into a row of `s.semantics`); where it ends, or -1."""
    cdef Py_ssize_t end, key, at, stop, k, got, inner
    cdef int64_t row[SEM]
    cdef int64_t member[MEMBER]
    cdef int64_t longest
    end = canonical(p, i, n, &longest)
    if end < 0:
        return -1
    row[:] = [i, end, 0, s.values.n, 0, s.codes.n, -1, 0, s.members.n // MEMBER, 0, -1, -1, longest]
    i += 1
    while p[i] == 34:
        key = i + 1
        i = after_string(p, i, n)
        if memchr(p + key, 92, i - 1 - key) != NULL:
            s.values.n, s.codes.n = row[S_VALUES], row[S_CODES]
            s.members.n = row[S_MEMBERS] * MEMBER
            return -1  # a key with escapes: whether it is `values` is orjson's to say
        at, stop = i + 1, -1  # where its value starts and ends, where read on the way
        if i - 1 - key == 6 and memcmp(p + key, b"values", 6) == 0:
            row[S_VALUES_TEXT] = row[S_MEMBERS] + row[S_MEMBER_COUNT]
            s.values.n = row[S_VALUES]
            row[S_DEPTH], got = -1, -1
            if p[at] == 91 and p[at + 1] == 91:
                row[S_DEPTH], got = 2, semantic_values(s, p, at + 1, n, &inner)
                if got >= 0 and p[inner] == 93:  # one list: the array ends after it
                    stop = inner + 1
            elif p[at] == 91:
                row[S_DEPTH], got = 1, semantic_values(s, p, at, n, &stop)
            if got < 0:
                row[S_DEPTH], s.values.n, stop = -1, row[S_VALUES], -1
            else:
                row[S_COUNT] = got
        elif i - 1 - key == 8 and memcmp(p + key, b"surfaces", 8) == 0:
            row[S_SURFACES_TEXT] = row[S_MEMBERS] + row[S_MEMBER_COUNT]
            s.codes.n, row[S_RICH], row[S_SURFACES] = row[S_CODES], 0, -1
            if p[at] == 91:
                stop = surfaces(s, p, at, n, row)
        if stop < 0:
            stop = after_value(p, at, n)
        member[:] = [key, i - 1, at, stop]
        push_row(&s.members, member, MEMBER)
        row[S_MEMBER_COUNT] += 1
        i = stop + (p[stop] == 44)
    push_row(&s.semantics, row, SEM)
    return end


class Passed:
    """The geometries' semantics, materials and textures lifted from a document (each JSON
    text as orjson writes it): row k of `semantics` is placeholder "\\x00s{k}"'s (its columns
    in cityjson_boundaries.pxi), its members rows of `members` (where each one's key and
    value start and end in the document's bytes), its values in `values` (-1 for null), its
    surfaces' types in `codes` (places in `names`); row k of `texts` where placeholder
    "\\x00p{k}"'s text starts and ends in the document's bytes, and its longest string's."""

    def __init__(self, semantics, members, values, codes, list names, texts):
        self.semantics, self.members, self.values = semantics, members, values
        self.codes, self.names, self.texts = codes, names, texts


cdef object passed(Passing *s, bytes data):
    """The `Passed` of what `s` lifted from `data`, its vectors freed."""
    names = [data[s.names[k][0] : s.names[k][1]].decode("ascii") for k in range(s.named)]
    return Passed(
        array(&s.semantics).reshape(-1, SEM),
        array(&s.members).reshape(-1, MEMBER),
        array(&s.values),
        array(&s.codes),
        names,
        array(&s.texts).reshape(-1, 3),
    )
