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
