# cython: language_level=3, boundscheck=False, wraparound=False
"""Whether JSON text holds a run of digits (json_numbers' test for integers beyond 64 bits),
compiled: the Python test translates the bytes (a copy as large) and searches the copy for the
run, two passes over a text whose coordinates are mostly digits. This one looks at the last
byte a run could end at and back from there to a byte that is no digit, then past it
(Horspool's skip): most bytes of a document are never looked at, and none is copied.
"""


cdef inline bint digit(unsigned char c) noexcept nogil:
    return <unsigned char>(c - 48) < 10


def has_digit_run(const unsigned char[::1] data not None, Py_ssize_t run) -> bool:
    """Whether `data` holds `run` (at least 1) ASCII digits in a row."""
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t start = 0  # no run starts before this
    cdef Py_ssize_t k
    if run < 1:
        raise ValueError("a run is at least one digit")
    while start + run <= n:
        k = start + run - 1
        while k >= start and digit(data[k]):
            k -= 1
        if k < start:
            return True
        start = k + 1
    return False
