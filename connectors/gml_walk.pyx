# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The CityGML walk compiled: libxml2's nodes read in C (Cython), not through lxml's proxies.

lxml makes a Python object and a "{ns}local" tag string for every element a Python walk meets,
and a CityGML batch is mostly surfaces. `read` walks a GML surface (MultiSurface,
CompositeSurface, Solid, Polygon, ...) over the nodes under lxml's element (gml_nodes.pxi) and
writes what GeometryReader's Python walk writes: each ring's text, srsDimension and blankness,
each polygon's ring count and text size, the handles and the gml:ids. `read_object` and
`properties` do ObjectReader._object and _properties the same way (citygml_walk.pxi),
`choose_surfaces` does citygml_choice.choose for a record of thematic surfaces alone
(citygml_choice.pxi); `parse_numbers` parses a batch's coordinate text (gml_numbers.pxi),
`repair_rings` repairs its rings (gml_rings.pxi), `gather_faces` gathers its faces
(gml_gather.pxi), `flattened` and `surface_handles` flatten its records' polygon handles
(gml_handles.pxi), `resolve` is Xlinks.resolve's loop (gml_resolve.pxi), `detach` cuts read
members out of the tree for a thread to free, `hollow` what they hold (gml_free.pxi).
Only the common subset is read here (rings of LinearRings whose first child is a posList,
plain attributes, thematic surfaces of those); at anything else (a Ring, pos, coordinates, a
comment among the elements, an srsDimension that is not 2, 3 or 4, a DTD that could give
attributes defaults) nothing is written and the Python code reads the element, so every case
keeps its one meaning there. gml_compiled.compiled is this module, or None where it did not
build.
"""

from cpython.list cimport PyList_GET_SIZE

from citypipe.connectors.gml_xlinks import flip

include "gml_nodes.pxi"

cdef enum:
    DONE = 0
    OTHER = 1  # outside the subset read here: the Python walk reads the element
    FAILED = -1  # a Python exception

cdef enum Kind:
    NONE, PATCH, PATCHES, ORIENTABLE, MEMBERS, SOLID

cdef class _Walk:
    """A reader's lists, kept on the reader (`_walk`), and the gml:ids one `read` found (set in
    the reader only when its walk is done)."""

    cdef list texts, dims, blank, ring_counts, sizes, ids
    cdef bytes gml_ns
    cdef const char *ns
    cdef object record

    def __cinit__(self, reader):
        self.texts, self.dims, self.blank = reader._texts, reader._dims, reader._blank
        self.ring_counts, self.sizes = reader._ring_counts, reader._sizes
        self.ids = []
        self.gml_ns = reader._gml_ns.encode()
        self.ns = self.gml_ns

    cdef Kind kind(self, xmlNode *node) noexcept:
        """Which of GeometryReader's surface readers reads `node` (NONE: not a GML surface)."""
        if node.type != ELEMENT or node.ns is NULL or strcmp(<const char *>node.ns.href, self.ns):
            return NONE
        cdef const char *n = <const char *>node.name
        if strcmp(n, b"Polygon") == 0 or strcmp(n, b"PolygonPatch") == 0 or strcmp(
            n, b"Triangle"
        ) == 0 or strcmp(n, b"Rectangle") == 0:
            return PATCH
        if strcmp(n, b"MultiSurface") == 0 or strcmp(n, b"CompositeSurface") == 0 or strcmp(
            n, b"Shell"
        ) == 0 or strcmp(n, b"MultiPolygon") == 0 or strcmp(n, b"CompositeSolid") == 0 or strcmp(
            n, b"MultiSolid"
        ) == 0:
            return MEMBERS
        if strcmp(n, b"Solid") == 0:
            return SOLID
        if strcmp(n, b"Surface") == 0 or strcmp(n, b"TriangulatedSurface") == 0 or strcmp(
            n, b"Tin"
        ) == 0 or strcmp(n, b"PolyhedralSurface") == 0:
            return PATCHES
        if strcmp(n, b"OrientableSurface") == 0:
            return ORIENTABLE
        return NONE

    cdef int gml_id(self, xmlNode *node, object refs) except FAILED:
        cdef object gid
        if node.properties is NULL:
            return DONE
        gid = attribute(node, self.ns, b"id")
        if gid is UNREAD:
            return OTHER
        if gid is not None:
            self.ids.append((gid, (self.record, refs)))
        return DONE

    cdef int surface(self, xmlNode *node, list out, int dimension) except FAILED:
        """GeometryReader._surface: a surface by its kind, its gml:id registered."""
        cdef Py_ssize_t start = PyList_GET_SIZE(out)
        cdef int done
        kind = self.kind(node)
        if kind == PATCH:
            done = self.polygon(node, out, dimension)
        elif kind == MEMBERS:
            done = self.members(node, out, dimension)
        elif kind == SOLID:
            done = self.solid(node, out, dimension)
        elif kind == PATCHES:
            done = self.patches(node, out, dimension)
        elif kind == ORIENTABLE:
            done = self.orientable(node, out, dimension)
        else:
            return OTHER
        if done != DONE:
            return done
        return self.gml_id(node, out[start:])

    cdef int polygon(self, xmlNode *node, list out, int dimension) except FAILED:
        """GeometryReader._polygon: a Polygon's rings (LinearRings of a posList) collected."""
        cdef Py_ssize_t first_ring = PyList_GET_SIZE(self.texts), size = 0
        cdef xmlNode *boundary = first_child(node)
        cdef xmlNode *ring
        cdef xmlNode *first
        cdef int dim
        cdef str text
        while boundary is not NULL:
            if boundary.type != ELEMENT:
                return OTHER
            if not (
                named(boundary, self.ns, b"exterior") or named(boundary, self.ns, b"interior")
                or named(boundary, self.ns, b"outerBoundaryIs")
                or named(boundary, self.ns, b"innerBoundaryIs")
            ):
                boundary = next_child(boundary)
                continue
            ring = first_child(boundary)
            if ring is NULL:
                boundary = next_child(boundary)
                continue
            if not named(ring, self.ns, b"LinearRing"):
                return OTHER
            first = first_child(ring)
            if first is NULL or not named(first, self.ns, b"posList"):
                return OTHER
            dim = dimension_of(first, dimension)
            if dim == 0:
                return OTHER
            text = text_of(first)
            if not text or text.isspace():
                self.blank.append(PyList_GET_SIZE(self.texts))
            self.texts.append(text)
            self.dims.append(dim)
            size += len(text)
            boundary = next_child(boundary)
        if PyList_GET_SIZE(self.texts) == first_ring:
            return OTHER  # no exterior ring: the Python walk says so
        self.ring_counts.append(PyList_GET_SIZE(self.texts) - first_ring)
        self.sizes.append(size)
        out.append(PyList_GET_SIZE(self.ring_counts) - 1)
        return DONE

    cdef int members(self, xmlNode *node, list out, int dimension) except FAILED:
        """GeometryReader._members: surfaceMember(s) / solidMember(s), inline or xlinks."""
        cdef xmlNode *member = first_child(node)
        cdef int done
        while member is not NULL:
            if member.type != ELEMENT:
                return OTHER
            done = self.held(member, out, dimension)
            if done != DONE:
                return done
            member = next_child(member)
        return DONE

    cdef int held(self, xmlNode *prop, list out, int dimension) except FAILED:
        """What a geometry property (a surface member, a Solid's exterior) holds: the surface
        its xlink:href names, and the surfaces inside it."""
        cdef xmlNode *child = first_child(prop)
        cdef object href
        cdef int done
        if prop.properties is not NULL:
            href = attribute(prop, XLINK, b"href")
            if href is UNREAD:
                return OTHER
            if href is not None:
                out.append(href.removeprefix("#"))
        while child is not NULL:
            if child.type != ELEMENT:
                return OTHER
            done = self.surface(child, out, dimension)
            if done != DONE:
                return done
            child = next_child(child)
        return DONE

    cdef int patches(self, xmlNode *node, list out, int dimension) except FAILED:
        cdef xmlNode *patches = first_child(node)
        cdef xmlNode *patch
        cdef int done
        while patches is not NULL:
            if patches.type != ELEMENT:
                return OTHER
            patch = first_child(patches)
            while patch is not NULL:
                done = self.surface(patch, out, dimension)
                if done != DONE:
                    return done
                patch = next_child(patch)
            patches = next_child(patches)
        return DONE

    cdef int orientable(self, xmlNode *node, list out, int dimension) except FAILED:
        cdef list own = []
        cdef object orientation
        done = self.members(node, own, dimension)
        if done != DONE:
            return done
        orientation = attribute(node, NULL, b"orientation")
        if orientation is UNREAD:
            return OTHER
        out.extend(flip(own) if orientation == "-" else own)
        return DONE

    cdef int solid(self, xmlNode *node, list out, int dimension) except FAILED:
        """The exterior shell's faces (interior shells are not part of the mass)."""
        cdef xmlNode *boundary = first_child(node)
        cdef int done
        while boundary is not NULL:
            if named(boundary, self.ns, b"exterior"):
                done = self.held(boundary, out, dimension)
                if done != DONE:
                    return done
            boundary = next_child(boundary)
        return DONE


cdef inline _Walk walk_of(reader):
    """The reader's _Walk (made at its first read)."""
    walk = reader._walk
    if walk is None:
        walk = reader._walk = _Walk(reader)
    return walk


cdef bint read_node(reader, _Walk walk, xmlNode *node, list out) except -1:
    """`read` of the node; `walk`, the reader's (`walk_of`)."""
    if not readable(node) or walk.kind(node) == NONE:
        return False
    cdef object srs = None
    cdef int dimension = reader.dimension
    if node.properties is not NULL:
        srs = attribute(node, NULL, b"srsName")
        dimension = dimension_of(node, dimension)
        if srs is UNREAD or dimension == 0:
            return False
    cdef Py_ssize_t kept = PyList_GET_SIZE(out), texts = PyList_GET_SIZE(walk.texts)
    cdef Py_ssize_t blank = PyList_GET_SIZE(walk.blank), rings = PyList_GET_SIZE(walk.ring_counts)
    walk.record = reader.record
    del walk.ids[:]
    if walk.surface(node, out, dimension) != DONE:  # what it wrote taken back
        del walk.texts[texts:], walk.dims[texts:], walk.blank[blank:]
        del walk.ring_counts[rings:], walk.sizes[rings:]
        del out[kept:]
        return False
    if srs and reader.srs_name is None:
        reader.srs_name = srs
    ids = reader.ids
    for gid, entry in walk.ids:
        ids[gid] = entry
    return True


def read(reader, elem, list out) -> bool:
    """GeometryReader.read's surfaces: read `elem` into the reader and its polygon handles into
    `out`, and True; or False, nothing written, where the Python walk has to read it."""
    if not isinstance(elem, _Element):
        return False
    return read_node(reader, walk_of(reader), (<LxmlElement *>elem)._c_node, out)


include "citygml_walk.pxi"
include "citygml_choice.pxi"
include "gml_numbers.pxi"
include "gml_rings.pxi"
include "gml_gather.pxi"
include "gml_handles.pxi"
include "gml_resolve.pxi"
include "gml_free.pxi"
