# The numbers of a CityJSON document read from its bytes as orjson and cityjson_values would
# read them (included by cityjson_lift.pyx, whose `Vec` and `push` `index` uses): vertex
# coordinates (`number`, `positions`) and vertex indices (`index`).

cdef inline Py_ssize_t digits(
    const unsigned char *p, Py_ssize_t i, Py_ssize_t n, bint negative, uint64_t *value
) noexcept:
    """Read the digits at `i` into `value`; where they end, or -1 where they are beyond an
    int64 (its magnitude, 2**63 where `negative`)."""
    cdef uint64_t v = 0
    while i < n and 48 <= p[i] <= 57:
        if v > (<uint64_t>1 << 63) // 10:
            return -1
        v = v * 10 + (p[i] - 48)
        i += 1
    if v > (<uint64_t>1 << 63) - (0 if negative else 1):
        return -1
    value[0] = v
    return i


cdef Py_ssize_t number(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, double *out) except -2:
    """Read the JSON number at `i` into `out` as orjson and cityjson_values would make it a
    float (an integer through int64); where it ends, or -1 where it is none or not such. With
    `out` NULL it is only checked: a fraction without an exponent, its integer part within
    int64, is finite, and not read (Den Haag's 23,880 in the materials `checked` passes)."""
    cdef Py_ssize_t start = i
    cdef bint negative = False, integer = True, exponent = False
    cdef double checked_value
    cdef uint64_t value = 0
    cdef char *end
    if i < n and p[i] == 45:
        negative, i = True, i + 1
    if i >= n or not 48 <= p[i] <= 57:
        return -1
    if p[i] == 48:
        i += 1
    else:
        i = digits(p, i, n, negative, &value)
        if i < 0:
            return -1
    if i < n and p[i] == 46:
        integer, i = False, i + 1
        if i >= n or not 48 <= p[i] <= 57:
            return -1
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if i < n and (p[i] == 101 or p[i] == 69):
        integer, exponent, i = False, True, i + 1
        if i < n and (p[i] == 43 or p[i] == 45):
            i += 1
        if i >= n or not 48 <= p[i] <= 57:
            return -1
        while i < n and 48 <= p[i] <= 57:
            i += 1
    if out == NULL:
        if not exponent:
            return i
        out = &checked_value
    if integer:
        out[0] = -<double>value if negative and value else <double>value  # "-0" is the int 0
        return i
    # read in place: the bytes end in NUL and the number at a byte no float's text goes on with
    out[0] = PyOS_string_to_double(<const char *>p + start, &end, NULL)
    if end != <const char *>p + i or not isfinite(out[0]):
        return -1
    return i


cdef Py_ssize_t positions(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, double *xyz,
                          Py_ssize_t *count) except -2:
    """Read the array of [x, y, z] numbers at `i` into `xyz`, their number into `count`;
    where it ends, or -1 where it is not such an array."""
    cdef Py_ssize_t k = 0, c
    i = blank(p, i + 1, n)
    if i < n and p[i] == 93:
        count[0] = 0
        return i + 1
    while True:
        if i >= n or p[i] != 91:
            return -1
        i += 1
        for c in range(3):
            i = number(p, blank(p, i, n), n, xyz + 3 * k + c)
            if i < 0:
                return -1
            i = blank(p, i, n)
            if i >= n or p[i] != (93 if c == 2 else 44):
                return -1
            i += 1
        k += 1
        i = blank(p, i, n)
        if i < n and p[i] == 44:
            i = blank(p, i + 1, n)
        elif i < n and p[i] == 93:
            count[0] = k
            return i + 1
        else:
            return -1


cdef Py_ssize_t index(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Vec *out) except -2:
    """Push the JSON integer at `i` (within int64) onto `out`; where it ends, or -1."""
    cdef bint negative = p[i] == 45
    cdef uint64_t value = 0
    if negative:
        i += 1
    if i >= n or not 48 <= p[i] <= 57 or (p[i] == 48 and i + 1 < n and 48 <= p[i + 1] <= 57):
        return -1
    if negative and p[i] == 48:
        return -1  # "-0": its text is not the integer's
    i = digits(p, i, n, negative, &value)
    if i < 0:
        return -1
    if i < n and (p[i] == 46 or p[i] == 101 or p[i] == 69):
        return -1  # a fraction or an exponent: no index
    push(out, -<int64_t>(value - 1) - 1 if negative else <int64_t>value)
    return i
