# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""GeometryReader's surface walk compiled: libxml2's nodes read in C, not through lxml proxies.

lxml makes a Python object and a "{ns}local" tag string for every element a Python walk meets;
a CityGML batch's surfaces are most of its elements. `read` walks a GML surface (MultiSurface,
CompositeSurface, Solid, Polygon, ...) over the libxml2 nodes under lxml's element (the struct
fields of lxml's public C API and of libxml2's tree.h, declared below, so nothing is linked) and
writes what GeometryReader's Python walk writes: each ring's text, srsDimension and blankness,
each polygon's ring count and text size, the handles and the gml:ids. Only the common subset is
read here (rings of LinearRings whose first child is a posList); at anything else (a Ring, pos,
coordinates, a comment among the elements, an srsDimension that is not 2, 3 or 4, a DTD that
could give attributes defaults) nothing is written and `read` answers False: the Python walk
reads the element, so every case keeps its one meaning there. Text is lxml's `.text` (adjacent
text and CDATA nodes joined), attributes are `.get`'s.
"""

from cpython.list cimport PyList_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport strcmp, strlen

from lxml import etree

from citypipe.connectors.gml_xlinks import flip

cdef extern from *:
    """
    typedef unsigned char xmlChar;
    typedef struct _xmlNs {
        struct _xmlNs *next; int type; const xmlChar *href; const xmlChar *prefix;
        void *_private; void *context;
    } xmlNs;
    typedef struct _xmlNode {
        void *_private; int type; const xmlChar *name;
        struct _xmlNode *children; struct _xmlNode *last; struct _xmlNode *parent;
        struct _xmlNode *next; struct _xmlNode *prev; struct _xmlDoc *doc;
        xmlNs *ns; xmlChar *content; struct _xmlAttr *properties;
    } xmlNode;
    typedef struct _xmlAttr {
        void *_private; int type; const xmlChar *name;
        struct _xmlNode *children; struct _xmlNode *last; struct _xmlNode *parent;
        struct _xmlAttr *next; struct _xmlAttr *prev; struct _xmlDoc *doc;
        xmlNs *ns;
    } xmlAttr;
    typedef struct _xmlDoc {
        void *_private; int type; char *name;
        struct _xmlNode *children; struct _xmlNode *last; struct _xmlNode *parent;
        struct _xmlNode *next; struct _xmlNode *prev; struct _xmlDoc *doc;
        int compression; int standalone; void *intSubset; void *extSubset;
    } xmlDoc;
    struct LxmlElement { PyObject_HEAD void *_doc; xmlNode *_c_node; PyObject *_tag; };
    """
    ctypedef unsigned char xmlChar
    ctypedef struct xmlNs:
        const xmlChar *href
    ctypedef struct xmlDoc:
        void *intSubset
        void *extSubset
    ctypedef struct xmlAttr
    ctypedef struct xmlNode:
        int type
        const xmlChar *name
        xmlNode *children
        xmlNode *next
        xmlDoc *doc
        xmlNs *ns
        xmlChar *content
        xmlAttr *properties
    ctypedef struct xmlAttr:
        const xmlChar *name
        xmlNode *children
        xmlAttr *next
        xmlNs *ns
    struct LxmlElement:
        void *_doc
        xmlNode *_c_node

# libxml2's node types (xmlElementType)
cdef enum:
    ELEMENT = 1
    TEXT = 3
    CDATA = 4
    ENTITY_REF = 5
    PI = 7
    COMMENT = 8
    XINCLUDE_START = 19
    XINCLUDE_END = 20

cdef enum:
    DONE = 0
    OTHER = 1  # outside the subset read here: the Python walk reads the element
    FAILED = -1  # a Python exception

cdef enum Kind:
    NONE, PATCH, PATCHES, ORIENTABLE, MEMBERS, SOLID

cdef const char *XLINK = b"http://www.w3.org/1999/xlink"
cdef object _Element = etree._Element


cdef inline bint is_child(xmlNode *node) noexcept:
    """What lxml counts and iterates as a child (its _isElement)."""
    return node.type == ELEMENT or node.type == COMMENT or node.type == ENTITY_REF or node.type == PI


cdef inline xmlNode *first_child(xmlNode *node) noexcept:
    """The first child as lxml's elem[0] sees it (NULL: len(elem) == 0)."""
    cdef xmlNode *c = node.children
    while c is not NULL and not is_child(c):
        c = c.next
    return c


cdef inline xmlNode *next_child(xmlNode *node) noexcept:
    cdef xmlNode *c = node.next
    while c is not NULL and not is_child(c):
        c = c.next
    return c


cdef inline xmlNode *text_or_skip(xmlNode *node) noexcept:
    """lxml's _textNodeOrSkip: a text or CDATA node, XInclude markers skipped."""
    while node is not NULL:
        if node.type == TEXT or node.type == CDATA:
            return node
        if node.type != XINCLUDE_START and node.type != XINCLUDE_END:
            return NULL
        node = node.next
    return NULL


cdef inline str decode(const xmlChar *text):
    return PyUnicode_DecodeUTF8(<const char *>text, strlen(<const char *>text), NULL)


cdef str text_of(xmlNode *node):
    """An element's `.text or ""` (lxml's _collectText: adjacent text and CDATA nodes)."""
    cdef xmlNode *start = text_or_skip(node.children)
    cdef xmlNode *cur = start
    cdef const xmlChar *last = NULL
    cdef Py_ssize_t count = 0
    while cur is not NULL:
        if cur.content[0] != 0:
            last = cur.content
        count += 1
        cur = text_or_skip(cur.next)
    if last is NULL:
        return ""
    if count == 1:
        return decode(last)
    joined = b""
    while start is not NULL:
        joined += <bytes>(<const char *>start.content)
        start = text_or_skip(start.next)
    return joined.decode("utf-8")


cdef inline bint named(xmlNode *node, const char *ns, const char *local) noexcept:
    return (
        node.type == ELEMENT
        and node.ns is not NULL
        and strcmp(<const char *>node.name, local) == 0
        and strcmp(<const char *>node.ns.href, ns) == 0
    )


cdef object UNREAD = object()
"""An attribute whose value is more than one text node (entities): not read here."""


cdef object attribute(xmlNode *node, const char *ns, const char *name):
    """`.get`: the attribute `name` (in namespace `ns`; NULL: in none), None where there is
    none, UNREAD where its value is not one text node."""
    cdef xmlAttr *attr = node.properties
    while attr is not NULL:
        if strcmp(<const char *>attr.name, name) == 0 and (
            (attr.ns is NULL) if ns is NULL
            else (attr.ns is not NULL and strcmp(<const char *>attr.ns.href, ns) == 0)
        ):
            if attr.children is NULL:
                return ""
            if attr.children.next is NULL and attr.children.type in (TEXT, CDATA):
                return decode(attr.children.content)
            return UNREAD
        attr = attr.next
    return None


cdef class _Walk:
    """A reader's lists, kept on the reader (`_walk`), and the gml:ids one `read` found (set in
    the reader only when its walk is done)."""

    cdef list texts, dims, blank, ring_counts, sizes, ids
    cdef Py_ssize_t lengths[5]
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
        cdef object dim_text
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
            dim_text = attribute(first, NULL, b"srsDimension")
            if not dim_text:
                dim = dimension
            elif dim_text is not UNREAD and dim_text == "2" or dim_text == "3" or dim_text == "4":
                dim = int(dim_text)
            else:
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
        cdef xmlNode *child
        cdef object href
        cdef int done
        while member is not NULL:
            if member.type != ELEMENT:
                return OTHER
            child = first_child(member)
            if member.properties is not NULL:
                href = attribute(member, XLINK, b"href")
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
            member = next_child(member)
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
        cdef xmlNode *shell
        cdef object href
        cdef int done
        while boundary is not NULL:
            if named(boundary, self.ns, b"exterior"):
                href = attribute(boundary, XLINK, b"href")
                if href is UNREAD:
                    return OTHER
                if href is not None:
                    out.append(href.removeprefix("#"))
                shell = first_child(boundary)
                while shell is not NULL:
                    done = self.surface(shell, out, dimension)
                    if done != DONE:
                        return done
                    shell = next_child(shell)
            boundary = next_child(boundary)
        return DONE


cdef extern from "Python.h":
    void *PyCapsule_GetPointer(object capsule, const char *name) except? NULL
    const char *PyCapsule_GetName(object capsule) except? NULL
    object PyUnicode_FromFormat(const char *format, ...)

ctypedef object (*Factory)(void *doc, xmlNode *node)
cdef object _capsule = etree.__pyx_capi__["elementFactory"]
cdef Factory element_of = <Factory>PyCapsule_GetPointer(_capsule, PyCapsule_GetName(_capsule))
"""lxml's public C API: the proxy of a node (the one that exists, or a new one)."""

cdef object Parts = None, INTEGERS = None, add = None
cdef object read_geometry = None, read_property = None, read_named = None, read_surfaces = None


cdef void setup() except *:
    """What the readers of citygml_objects are, once they are all imported."""
    global Parts, INTEGERS, add, read_geometry, read_property, read_named, read_surfaces
    from citypipe.connectors.citygml_attributes import _named, property_
    from citypipe.connectors.citygml_objects import ObjectReader
    from citypipe.connectors.citygml_values import _INTEGERS, add as add_
    from citypipe.connectors.gml import Parts as Parts_

    Parts, read_geometry, read_property = Parts_, ObjectReader._geometry, property_
    read_named, read_surfaces = _named, ObjectReader._surfaces
    INTEGERS, add = _INTEGERS, add_


cdef inline bint readable(xmlNode *node) noexcept:
    """An element of a document without a DTD (which could give attributes defaults that
    `.get` answers)."""
    return node.type == ELEMENT and node.doc.intSubset is NULL and node.doc.extSubset is NULL


cdef inline _Walk walk_of(reader):
    """The reader's _Walk (made at its first read)."""
    walk = reader._walk
    if walk is None:
        walk = reader._walk = _Walk(reader)
    return walk


cdef bint read_node(reader, xmlNode *node, list out) except -1:
    """`read` of the node."""
    if not readable(node):
        return False
    cdef _Walk walk = walk_of(reader)
    if walk.kind(node) == NONE:
        return False
    cdef object srs = None, dim_text = None
    cdef int dimension = reader.dimension
    if node.properties is not NULL:
        srs = attribute(node, NULL, b"srsName")
        dim_text = attribute(node, NULL, b"srsDimension")
        if srs is UNREAD or dim_text is UNREAD:
            return False
        if dim_text:
            if dim_text not in ("2", "3", "4"):
                return False
            dimension = int(dim_text)
    cdef list written = [walk.texts, walk.dims, walk.blank, walk.ring_counts, walk.sizes]
    cdef Py_ssize_t i, kept = PyList_GET_SIZE(out)
    for i in range(5):
        walk.lengths[i] = PyList_GET_SIZE(written[i])
    walk.record = reader.record
    del walk.ids[:]
    if walk.surface(node, out, dimension) != DONE:
        for i in range(5):
            del written[i][walk.lengths[i]:]
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
    return read_node(reader, (<LxmlElement *>elem)._c_node, out)


cdef object parts_of(reader, xmlNode *node):
    """ObjectReader._read_geometry of a property holding one surface, an xlink:href to one or
    nothing (None: anything else, nothing written)."""
    cdef object href = None
    cdef xmlNode *child
    if node.properties is not NULL:
        href = attribute(node, XLINK, b"href")
        if href is UNREAD:
            return None
    if href is not None:
        return Parts([href.removeprefix("#")])
    child = first_child(node)
    parts = Parts()
    if child is not NULL and (
        next_child(child) is not NULL or not read_node(reader, child, parts.polygons)
    ):
        return None
    return parts


cdef int geometry(reader, rec, xmlNode *node, tuple args) except FAILED:
    """ObjectReader._geometry where `parts_of` reads the property."""
    parts = parts_of(reader, node)
    if parts is None:
        return OTHER
    lod, rank, footprint = args
    rec.geometries.append((lod, rank, parts))
    if footprint:
        rec.footprint += parts.polygons
    return DONE


cdef bint read_attribute(dict properties, xmlNode *node, read_, tuple args) except -1:
    """attributes.property_ of an element of text alone (no attribute, no child), or _named of
    a gen:stringAttribute with a name and one value: its value added to `properties`. False,
    nothing written, for any other (the Python reader reads it)."""
    cdef xmlNode *child
    if read_ is read_property:
        key = args[0]
        if node.properties is not NULL or first_child(node) is not NULL or key in INTEGERS:
            return False
        add_to(properties, key, text_of(node).strip() or None)
        return True
    if read_ is read_named and args[0] == "stringattribute":
        child = first_child(node)
        if child is NULL or child.type != ELEMENT or next_child(child) is not NULL:
            return False
        name = attribute(node, NULL, b"name")
        if name is None or name is UNREAD:
            return False
        add_to(properties, name, text_of(child).strip() or None)
        return True
    return False


cdef inline void add_to(dict properties, key, text) except *:
    """citygml_values.add (a value given again joins the earlier in a list)."""
    if text is None:
        return
    if key in properties:
        add(properties, key, text)
    else:
        properties[key] = text


cdef object thematic(reader, rec, xmlNode *surface):
    """ObjectReader._thematic of a surface whose properties are attributes `read_attribute`
    reads and at most one geometry property that `parts_of` reads: its entry for the record's
    properties ({}: none); None, nothing written, for any other surface."""
    cdef dict kinds = reader._kinds, properties = {}
    cdef xmlNode *child = first_child(surface)
    cdef xmlNode *geometry_property = NULL
    cdef tuple args
    while child is not NULL:
        if child.type != ELEMENT:
            return None
        kind = kinds.get(tag_of(child))
        if kind is None:
            return None
        read_, args = kind[1], kind[2]
        if read_ is read_geometry and geometry_property is NULL:
            geometry_property, lod = child, args[0]
        elif not read_attribute(properties, child, read_, args):
            return None
        child = next_child(child)
    geometry_reader = reader.geometry
    sid = attribute(surface, (<_Walk>walk_of(geometry_reader)).ns, b"id")
    if sid is UNREAD:
        return None
    refs = []
    feature_class = decode(surface.name)
    if geometry_property is not NULL:
        parts = parts_of(geometry_reader, geometry_property)
        if parts is None:
            return None
        polygons = parts.polygons
        rec.surfaces.append((feature_class, lod or 0, polygons))
        refs += polygons
        if lod == 0 and feature_class == "GroundSurface":
            rec.footprint += polygons
    if sid is not None:
        geometry_reader.ids[sid] = (rec.index, refs)
    if not properties:
        return {}
    entry = {"type": feature_class}
    if sid:
        entry["gml:id"] = sid
    entry.update(properties)
    return entry


cdef int surfaces(reader, rec, xmlNode *node, tuple args, void *doc) except FAILED:
    """ObjectReader._surfaces: thematic surfaces read by `thematic`, the others by
    ObjectReader._thematic (OTHER: a property holding anything but elements)."""
    cdef xmlNode *surface = first_child(node)
    while surface is not NULL:
        if surface.type != ELEMENT:
            return OTHER
        surface = next_child(surface)
    key = args[0]
    if node.properties is not NULL:
        href = attribute(node, XLINK, b"href")
        if href is UNREAD:
            return OTHER
        add_to(rec.properties, key, href)
    surface = first_child(node)
    while surface is not NULL:
        entry = thematic(reader, rec, surface)
        if entry is None:
            entry = reader._thematic(rec, element_of(doc, surface))
        if entry:
            rec.properties.setdefault(key, []).append(entry)
        surface = next_child(surface)
    return DONE


cdef str tag_of(xmlNode *node):
    """lxml's `.tag`: {namespace}local."""
    if node.ns is NULL or node.ns.href is NULL:
        return decode(node.name)
    return PyUnicode_FromFormat(b"{%s}%s", node.ns.href, node.name)


def properties(reader, rec, elem) -> bool:
    """ObjectReader._properties: each property of `elem` read by the reader its tag is
    classified to; geometry properties, attributes and thematic surfaces (`geometry`,
    `read_attribute`, `surfaces`) read here where they can be.
    False, nothing read, where an element holds anything but elements (the Python loop)."""
    if read_geometry is None:
        setup()
    if not isinstance(elem, _Element):
        return False
    cdef xmlNode *node = (<LxmlElement *>elem)._c_node
    if not readable(node):
        return False
    cdef xmlNode *child = first_child(node)
    while child is not NULL:
        if child.type != ELEMENT:
            return False
        child = next_child(child)
    cdef void *doc = (<LxmlElement *>elem)._doc
    kinds, geometry_reader = reader._kinds, reader.geometry
    child = first_child(node)
    while child is not NULL:
        kind = kinds.get(tag_of(child))
        proxy = None
        if kind is None:
            proxy = element_of(doc, child)
            kind = reader._classify(proxy)
        on_record, read_, args = kind
        if read_ is read_geometry:
            done = geometry(geometry_reader, rec, child, <tuple>args)
        elif read_attribute(rec.properties, child, read_, <tuple>args):
            done = DONE
        elif read_ is read_surfaces:
            done = surfaces(reader, rec, child, <tuple>args, doc)
        else:
            done = OTHER
        if done != DONE:
            if proxy is None:
                proxy = element_of(doc, child)
            if on_record:
                read_(rec, proxy, *args)
            else:
                read_(reader, rec, proxy, *args)
        child = next_child(child)
    return True
