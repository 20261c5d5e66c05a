# cython: language_level=3, boundscheck=False, wraparound=False
"""Nested lists of numbers as a float array, compiled (coordinates.to_floats): where every
list is a list and every value a float or an int, their values are written into the array as
the lists are walked, where the Python way unpacks them all into one call's arguments (a tuple
of every value: 1.2 of Barcelona's barris' 1.6 ms). Anything else (a tuple, a bool, a string,
an int beyond a double, another count, a list of numbers of another width) is left to the
Python way, which says what is wrong.
"""

import numpy as np

from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsDouble


cdef bint fill(
    object node, int level, double[::1] out, Py_ssize_t *at, Py_ssize_t width
) except -1:
    """Write the numbers `level` lists below `node` (a list of numbers at 0) into `out` from
    `at`; False where anything is not a list or an exact float or int, `out` is full, or a
    list of numbers does not hold `width` (where not 0)."""
    cdef Py_ssize_t i, n
    cdef object value
    if type(node) is not list:
        return False
    n = PyList_GET_SIZE(node)
    if level > 0:
        for i in range(n):
            if not fill(<object>PyList_GET_ITEM(node, i), level - 1, out, at, width):
                return False
        return True
    if at[0] + n > out.shape[0] or (width != 0 and n != width):
        return False
    for i in range(n):
        value = <object>PyList_GET_ITEM(node, i)
        if type(value) is float:
            out[at[0] + i] = PyFloat_AS_DOUBLE(value)
        elif type(value) is int:
            try:
                out[at[0] + i] = PyLong_AsDouble(value)
            except OverflowError:
                return False
        else:
            return False
    at[0] += n
    return True


def floats_of(nested: object, int levels, Py_ssize_t count, Py_ssize_t width = 0) -> object:
    """The `count` numbers `levels` lists below the list `nested` (its items are lists of
    numbers at 1) as a float array, or None where the Python way is to be taken; `width`
    (where not 0): how many numbers each list of them holds (a position's dimension)."""
    out = np.empty(count)
    cdef Py_ssize_t at = 0
    if count == 0 or not fill(nested, levels, out, &at, width) or at != count:
        return None
    return out
