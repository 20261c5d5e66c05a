# A geometry's semantics, material and texture as cityjson_lift left them (cityjson_passed.pxi),
# read by the walk (included by cityjson_walk.pyx, after its `Lifted`): their text handed on
# as it is, a semantics' values and surface types from the lift's arrays.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeASCII

from collections.abc import Sequence


cdef object Fragment = orjson.Fragment


cdef Py_ssize_t placed_row(object v, Py_UCS4 kind):
    """The row of what `v` stands for where it is a placeholder of `kind` ("s": semantics,
    "p": a material or texture), else -1."""
    cdef Py_ssize_t n, i, c, row = 0
    if type(v) is not str:
        return -1
    n = len(<str>v)
    if n < 3 or (<str>v)[0] != "\x00" or (<str>v)[1] != kind:
        return -1
    for i in range(2, n):
        c = <Py_UCS4>(<str>v)[i]
        if not 48 <= c <= 57:
            return -1
        row = row * 10 + (c - 48)
    return row


cdef bytes span(Lifted lifted, Py_ssize_t start, Py_ssize_t end):
    """The document's bytes from `start` to `end`."""
    return PyBytes_FromStringAndSize(<const char *>lifted.data + start, end - start)


cdef bytes boundaries_text(Lifted lifted, Py_ssize_t k):
    """The JSON text of boundaries `k` as orjson writes it (its blanks taken out)."""
    cdef const int64_t *row = lifted.where + k * WHERE
    text = span(lifted, row[W_START], row[W_END])
    return text.translate(None, b" \t\r\n") if row[W_SPACED] else text


cdef bytes semantics_text(Lifted lifted, Py_ssize_t k):
    cdef const int64_t *row = lifted.semantics + k * SEM
    return span(lifted, row[S_START], row[S_END])


cdef bytes passed_text(Lifted lifted, Py_ssize_t k):
    return span(lifted, lifted.spans[3 * k], lifted.spans[3 * k + 1])


cdef object passed_value(Lifted lifted, Py_ssize_t k):
    """Material or texture `k` as its text (orjson.Fragment), or parsed where a string in it is
    longer than the properties keep whole (`Lifted.limit`: they cut it)."""
    text = passed_text(lifted, k)
    return orjson.loads(text) if lifted.spans[3 * k + 2] > lifted.limit else Fragment(text)


cdef bytes lod_text(Lifted lifted, object lod):
    """The JSON text of a geometry's LoD (its text, or None), written once a batch."""
    cdef bytes text = lifted.lods.get(lod)
    if text is None:
        text = lifted.lods[lod] = orjson.dumps(lod)
    return text


cdef tuple LOOKS = ("material", "texture")
cdef tuple LOOK_KEYS = (b',"material":', b',"texture":')


cdef object appearance_look(dict g, object lod, Lifted lifted):
    """{"lod": lod, "material": ..., "texture": ...} (those `g` has) as cityjson_objects.
    _properties makes it: as its text (orjson.Fragment) where each was lifted and holds no
    string longer than the properties keep whole, its placeholder left in `g` (a record read
    puts it back); else a dict, each lifted one as `passed_value`."""
    cdef Py_ssize_t rows[2]
    cdef Py_ssize_t i, k, size
    cdef bytes lod_json, text
    cdef char *q
    cdef bint whole = lifted is not None
    for i in range(2):
        rows[i] = -1
        if LOOKS[i] in g:
            k = -1 if lifted is None else placed_row(g[LOOKS[i]], "p")
            rows[i] = k
            whole = whole and k >= 0 and lifted.spans[3 * k + 2] <= lifted.limit
    if not whole:
        look = {"lod": lod}
        for i in range(2):
            if LOOKS[i] in g:
                v = g[LOOKS[i]]
                if rows[i] >= 0:
                    g[LOOKS[i]] = v = passed_value(lifted, rows[i])
                look[LOOKS[i]] = v
        return look
    lod_json = lod_text(lifted, lod)
    size = 8 + len(lod_json)  # {"lod":...}
    for i in range(2):
        if rows[i] >= 0:
            size += len(<bytes>LOOK_KEYS[i]) + lifted.spans[3 * rows[i] + 1] - lifted.spans[3 * rows[i]]
    text = PyBytes_FromStringAndSize(NULL, size)
    q = PyBytes_AS_STRING(text)
    memcpy(q, b'{"lod":', 7)
    memcpy(q + 7, PyBytes_AS_STRING(lod_json), len(lod_json))
    q += 7 + len(lod_json)
    for i in range(2):
        if rows[i] >= 0:
            k = len(<bytes>LOOK_KEYS[i])
            memcpy(q, PyBytes_AS_STRING(<bytes>LOOK_KEYS[i]), k)
            q += k
            k = lifted.spans[3 * rows[i] + 1] - lifted.spans[3 * rows[i]]
            memcpy(q, <const char *>lifted.data + lifted.spans[3 * rows[i]], k)
            q += k
    q[0] = 125  # }
    return Fragment(text)


cdef bytes member_text(Lifted lifted, Py_ssize_t m):
    cdef const int64_t *member = lifted.members + m * MEMBER
    return span(lifted, member[M_VALUE], member[M_VALUE_END])


cdef object semantic_look(Lifted lifted, Py_ssize_t k, object lod):
    """{"lod": lod, **semantics k} as cityjson_objects._properties makes it: as its text
    (orjson.Fragment), or where the semantics name a `lod` of their own (which replaces the
    geometry's) as a dict of their members' texts; parsed where a string in them is longer
    than the properties keep whole (`Lifted.limit`)."""
    cdef const int64_t *row = lifted.semantics + k * SEM
    cdef const int64_t *member
    cdef const char *data = lifted.data
    cdef Py_ssize_t m, size, first = row[S_MEMBERS], last = first + row[S_MEMBER_COUNT]
    cdef bytes lod_json
    cdef char *q
    if row[S_LONGEST] > lifted.limit:  # parsed, as the properties cut its long text
        out = {"lod": lod}
        out.update(orjson.loads(semantics_text(lifted, k)))
        return out
    for m in range(first, last):
        member = lifted.members + m * MEMBER
        if member[M_KEY_END] - member[M_KEY] == 3 and memcmp(data + member[M_KEY], b"lod", 3) == 0:
            out = {"lod": lod}
            for m in range(first, last):
                member = lifted.members + m * MEMBER
                size = member[M_KEY_END] - member[M_KEY]
                key = PyUnicode_DecodeASCII(data + member[M_KEY], size, NULL)
                out[key] = Fragment(span(lifted, member[M_VALUE], member[M_VALUE_END]))
            return out
    lod_json = lod_text(lifted, lod)
    size = 7 + len(lod_json) + row[S_END] - row[S_START]  # {"lod": lod_json, ...
    text = PyBytes_FromStringAndSize(NULL, size)
    q = PyBytes_AS_STRING(text)
    memcpy(q, b'{"lod":', 7)
    memcpy(q + 7, PyBytes_AS_STRING(lod_json), len(lod_json))
    q[7 + len(lod_json)] = 44  # a comma where the semantics' text has its {
    memcpy(q + 8 + len(lod_json), data + row[S_START] + 1, row[S_END] - row[S_START] - 1)
    return Fragment(text)


class Records(Sequence):
    """A batch's records ({id: CityObject}) as the lift left them, each handed out with what
    was lifted put back as its text (orjson.Fragment, which it is written with): a batch's
    records are read only where one is rejected (connectors.base.SourceBatch)."""

    def __init__(self, list records, boundaries):
        self._records, self._boundaries, self._lifted = records, boundaries, None

    def __len__(self):
        return len(self._records)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        record = self._records[i]
        if self._lifted is None:
            self._lifted = Lifted(self._boundaries)
        for obj in record.values() if type(record) is dict else ():
            if type(obj) is dict:
                placed(<dict>obj, self._lifted, False)
        return record


cdef bint rich_semantics(Lifted lifted, Py_ssize_t k):
    """cityjson_objects._rich of semantics `k`'s surfaces."""
    return lifted.semantics[k * SEM + S_RICH] != 0


cdef class SemanticValues:
    """A polygon job's semantic values and surface types as the lift read them: its values
    (-1 for null) and the codes of its surfaces' types, in the lift's arrays."""

    cdef Lifted lifted
    cdef Py_ssize_t row
    cdef const int64_t *values
    cdef Py_ssize_t count
    cdef const int64_t *codes
    cdef Py_ssize_t surfaces

    def lists(self):
        """The values and the surfaces as orjson parses them, as a job's would be: the values
        of a Solid's outer shell, the surfaces (None where the semantics have none)."""
        cdef const int64_t *row = self.lifted.semantics + self.row * SEM
        values = orjson.loads(member_text(self.lifted, row[S_VALUES_TEXT]))
        if row[S_DEPTH] == 2:
            values = values[0]
        if row[S_SURFACES_TEXT] < 0:
            return values, None
        return values, orjson.loads(member_text(self.lifted, row[S_SURFACES_TEXT]))


cdef SemanticValues semantic_values_of(Lifted lifted, Py_ssize_t k, object t):
    """The values of semantics `k` of a geometry of type `t`, where they are as the walk reads
    them (as deep as its type, some there, each surface typed); None otherwise."""
    cdef const int64_t *row = lifted.semantics + k * SEM
    cdef SemanticValues out
    cdef int depth = 2 if t == "Solid" else 1
    if row[S_DEPTH] != depth or row[S_COUNT] == 0 or row[S_SURFACES] < 0:
        return None
    out = SemanticValues.__new__(SemanticValues)
    out.lifted, out.row = lifted, k
    out.values, out.count = lifted.values + row[S_VALUES], row[S_COUNT]
    out.codes, out.surfaces = lifted.codes + row[S_CODES], row[S_SURFACES]
    return out


def semantic_values(list jobs):
    """cityjson_semantics._gathered of the jobs: how many semantic values each has, the values
    (0 where None) and which are None, how many surfaces each lists and their types; None
    where anything is not as that needs (the Python gathering says so). Values the lift read
    (`SemanticValues`) are copied from its arrays."""
    cdef Py_ssize_t n = PyList_GET_SIZE(jobs), total = 0, listed = 0, i, k, m, at = 0
    cdef object job, values, semantics, surfaces, v, kind
    cdef SemanticValues lifted
    cdef list all_values = [None] * n, all_surfaces = [None] * n
    cdef int64_t[::1] counts = np.empty(n, np.int64), per_job = np.empty(n, np.int64)
    for i in range(n):
        job = <object>PyList_GET_ITEM(jobs, i)
        values, semantics = job.values, job.semantics
        if type(values) is SemanticValues:
            lifted = <SemanticValues>values
            all_values[i] = values
            counts[i], per_job[i] = lifted.count, lifted.surfaces
        else:
            if not values:
                values = []
            if type(values) is not list or not (semantics is None or type(semantics) is dict):
                return None
            surfaces = (<dict>semantics).get("surfaces") if semantics else None
            if not surfaces:
                surfaces = []
            if type(surfaces) is not list:
                return None
            all_values[i], all_surfaces[i] = values, surfaces
            counts[i], per_job[i] = PyList_GET_SIZE(values), PyList_GET_SIZE(surfaces)
        total += counts[i]
        listed += per_job[i]
    value_array, none_array = np.zeros(total, np.int64), np.zeros(total, np.bool_)
    kinds = np.empty(listed, object)
    cdef int64_t[::1] value = value_array
    cdef unsigned char[::1] none = none_array.view(np.uint8)
    cdef object[::1] types = kinds
    for i in range(n):
        values = all_values[i]
        if type(values) is SemanticValues:
            lifted = <SemanticValues>values
            for k in range(counts[i]):
                if lifted.values[k] < 0:
                    none[at] = 1
                else:
                    value[at] = lifted.values[k]
                at += 1
            continue
        for k in range(counts[i]):
            v = <object>PyList_GET_ITEM(values, k)
            if v is None:
                none[at] = 1
            elif type(v) is int:
                try:
                    value[at] = PyLong_AsLongLong(v)
                except OverflowError:
                    return None
            else:
                return None
            at += 1
    at = 0
    for i in range(n):
        if type(all_values[i]) is SemanticValues:
            lifted = <SemanticValues>all_values[i]
            for k in range(per_job[i]):
                types[at] = lifted.lifted.names[lifted.codes[k]]
                at += 1
            continue
        surfaces = all_surfaces[i]
        for k in range(per_job[i]):
            v = <object>PyList_GET_ITEM(surfaces, k)
            if type(v) is not dict:
                return None
            kind = (<dict>v).get("type")
            if type(kind) is not str:
                return None
            types[at] = kind
            at += 1
    return counts.base, value_array, none_array, per_job.base, kinds
