# The layout of cityjson_lift.Boundaries (included by cityjson_lift.pyx, which writes it, and
# cityjson_walk.pyx, which reads it): its nesting levels and the columns of a `where` row, so
# the two agree by name rather than by number.

cdef enum:
    DEEPEST = 5  # MultiSolid, CompositeSolid: solid, shell, surface, ring, vertex
    W_DEPTH = 0  # how deep its lists are nested
    W_LEVELS = 1  # where its lists start in levels[0] .. levels[DEEPEST - 1] (DEEPEST columns)
    W_IDX = W_LEVELS + DEEPEST  # where its vertex indices start in idx
    W_START = W_IDX + 1  # where its text starts in the document
    W_END = W_START + 1  # where its text ends
    W_SPACED = W_END + 1  # whether its text holds blanks
    WHERE = W_SPACED + 1  # columns of a row

# A row of cityjson_lift.Boundaries.semantics: a geometry's semantics lifted (cityjson_passed.pxi)
cdef enum:
    S_START = 0  # where its text starts in the document
    S_END = 1  # where it ends
    S_DEPTH = 2  # how its values nest: 1 or 2 (those of its first list lifted), 0 none, -1 not so
    S_VALUES = 3  # where its (first list's) values start in `values` (-1 for null)
    S_COUNT = 4  # how many
    S_CODES = 5  # where its surfaces' type codes start in `codes`
    S_SURFACES = 6  # how many surfaces: -1 where one is no object with a text type
    S_RICH = 7  # whether a surface says more than its type (cityjson_objects._rich)
    S_MEMBERS = 8  # where its members start in `members`
    S_MEMBER_COUNT = 9  # how many
    S_VALUES_TEXT = 10  # which of its members is `values` (-1: none)
    S_SURFACES_TEXT = 11  # which is `surfaces` (-1: none)
    S_LONGEST = 12  # the bytes of its longest string (`canonical`)
    SEM = 13  # columns of a row
    M_KEY = 0  # a row of `members`: where its key's text starts and ends, its value's
    M_KEY_END = 1
    M_VALUE = 2
    M_VALUE_END = 3
    MEMBER = 4
