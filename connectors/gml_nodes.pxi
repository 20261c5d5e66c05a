# libxml2's nodes as lxml shows them, read in C (included by gml_walk.pyx).
#
# The layouts of lxml's element (its public C API, lxml.etree.h) and of libxml2's nodes,
# attributes, namespaces and documents (libxml/tree.h) are declared here, so the build needs
# neither their headers nor linking: walking is reading struct fields. Each helper answers as
# lxml does: children as it iterates them (comments, PIs and entity references too), `.text`
# (adjacent text and CDATA nodes joined), `.get`, `.tag`, and the proxy of a node.

from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport strcmp, strlen, strncmp

from lxml import etree

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
        xmlNs *ns; int atype;
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
        void *_private
        int type
        const xmlChar *name
        xmlNode *children
        xmlNode *last
        xmlNode *parent
        xmlNode *next
        xmlNode *prev
        xmlDoc *doc
        xmlNs *ns
        xmlChar *content
        xmlAttr *properties
    ctypedef struct xmlAttr:
        const xmlChar *name
        xmlNode *children
        xmlAttr *next
        xmlNs *ns
        int atype
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


cdef int dimension_of(xmlNode *node, int default) noexcept:
    """The srsDimension attribute (in no namespace) as `attribute` reads it, without making
    its str: 2, 3 or 4, `default` where there is none or it is empty, 0 for any other value
    (the Python walk reads that element)."""
    cdef xmlAttr *attr = node.properties
    cdef const xmlChar *value
    while attr is not NULL:
        if attr.ns is NULL and strcmp(<const char *>attr.name, b"srsDimension") == 0:
            if attr.children is NULL:
                return default
            if attr.children.next is not NULL or not (
                attr.children.type == TEXT or attr.children.type == CDATA
            ):
                return 0
            value = attr.children.content
            if value[0] == 0:
                return default
            if value[1] == 0 and value[0] >= c'2' and value[0] <= c'4':
                return value[0] - c'0'
            return 0
        attr = attr.next
    return default


cdef inline bint readable(xmlNode *node) noexcept:
    """An element of a document without a DTD (which could give attributes defaults that
    `.get` answers)."""
    return node.type == ELEMENT and node.doc.intSubset is NULL and node.doc.extSubset is NULL


cdef struct _Tag:
    const xmlChar *name
    const xmlChar *href
    PyObject *tag  # a reference owned here

cdef _Tag _tags[256]
"""The tags made, by libxml2's name and namespace pointers (a property's tag is looked up in
the reader's kinds once per element: made and hashed each time, it was a tenth of the walk)."""


cdef str tag_of(xmlNode *node):
    """lxml's `.tag`: {namespace}local; the str made once per name and namespace met (a hit
    checked against its text: a freed document's pointers may hold other names since)."""
    if node.ns is NULL or node.ns.href is NULL:
        return decode(node.name)
    cdef const xmlChar *href = node.ns.href
    cdef _Tag *seen = &_tags[((<size_t>node.name >> 4) ^ (<size_t>href >> 6)) & 255]
    cdef const char *text
    cdef size_t length
    if seen.name == node.name and seen.href == href:
        text = PyUnicode_AsUTF8(<object>seen.tag)  # the str's own bytes: ASCII, or cached
        length = strlen(<const char *>href)
        if (
            strncmp(text + 1, <const char *>href, length) == 0 and text[length + 1] == c'}'
            and strcmp(text + length + 2, <const char *>node.name) == 0
        ):
            return <str>seen.tag
    tag = PyUnicode_FromFormat(b"{%s}%s", href, node.name)
    Py_XDECREF(seen.tag)
    Py_INCREF(tag)
    seen.name, seen.href, seen.tag = node.name, href, <PyObject *>tag
    return tag


cdef extern from "Python.h":
    void *PyCapsule_GetPointer(object capsule, const char *name) except? NULL
    const char *PyCapsule_GetName(object capsule) except? NULL
    object PyUnicode_FromFormat(const char *format, ...)
    const char *PyUnicode_AsUTF8(object unicode) except NULL

ctypedef object (*Factory)(void *doc, xmlNode *node)
cdef object _capsule = etree.__pyx_capi__["elementFactory"]
cdef Factory element_of = <Factory>PyCapsule_GetPointer(_capsule, PyCapsule_GetName(_capsule))
"""lxml's public C API: the proxy of a node (the one that exists, or a new one)."""
