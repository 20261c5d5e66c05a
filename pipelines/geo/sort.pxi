# Included (Cython's `include`) by a module that names the type it sorts `Item` (a fused type
# or a ctypedef) and says by `cdef inline bint before(const Item *p, const Item *q)` which of
# two comes first: a sort without a call per comparison, as qsort makes one.


cdef inline void swap(Item *a, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    cdef Item t = a[i]
    a[i] = a[j]
    a[j] = t


cdef void sort(Item *a, Py_ssize_t n) noexcept nogil:
    """`a` in ascending order (`before`; equal ones in any order), without a call per
    comparison: quicksort on the median of three, the shorter side first, insertion sort
    below 16."""
    cdef Py_ssize_t i, j, hi
    cdef Item held
    while n > 16:
        hi, i = n - 1, n // 2
        if before(&a[i], &a[0]):
            swap(a, i, 0)
        if before(&a[hi], &a[0]):
            swap(a, hi, 0)
        if before(&a[hi], &a[i]):
            swap(a, hi, i)
        held, i, j = a[i], 0, hi
        while i <= j:  # Hoare's partition around the median
            while before(&a[i], &held):
                i += 1
            while before(&held, &a[j]):
                j -= 1
            if i <= j:
                swap(a, i, j)
                i, j = i + 1, j - 1
        if j + 1 < n - i:
            sort(a, j + 1)
            a, n = a + i, n - i
        else:
            sort(a + i, n - i)
            n = j + 1
    for i in range(1, n):
        held, j = a[i], i - 1
        while j >= 0 and before(&held, &a[j]):
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = held
