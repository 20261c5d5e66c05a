# A CityModel's first members cut out of the tree here, or what its walked members hold
# (`hollow`), freed later by any thread, or at once (included by gml_walk.pyx).
#
# lxml's `del model[:n]` frees each member's subtree under the GIL: a tenth of the walk of a
# large file (the 422 MB file: 35-100 ms a batch, 0.5-0.9 s in all), on the reading process's
# critical path. Here the members are only unlinked (the same pointer updates as libxml2's
# xmlUnlinkNode), and `Detached.free` hands them to libxml2's xmlFreeNode (from lxml's own
# module: the same libxml2) without the GIL, so a thread frees them while the parse goes on.
# That is safe only for nodes nothing else can reach: no node of a member may have a Python
# proxy (lxml would free or move it when the proxy dies), and no attribute may be in the
# document's ID table (an xml:id: freeing it edits the table, which the parse may add to). Else
# `detach` answers None and the caller deletes them as lxml does. libxml2's string dictionary
# is only read by the freeing (is the string its own?), and its pools only grow.

from libc.stdlib cimport free as c_free, malloc

import ctypes

ctypedef void (*FreeNode)(xmlNode *) noexcept nogil


def _free_node_address(library):
    """The address of xmlFreeNode in `library`, or 0 where it is not found there (an lxml built
    without exporting it): `detach` then answers None, where the AttributeError would have
    failed every GML import (gml_compiled's guard catches an ImportError only)."""
    try:
        return ctypes.cast(ctypes.CDLL(library).xmlFreeNode, ctypes.c_void_p).value or 0
    except (AttributeError, OSError):
        return 0


cdef FreeNode _free_node = <FreeNode><size_t>_free_node_address(etree.__file__)


cdef enum:
    ATTRIBUTE_ID = 2  # libxml2's XML_ATTRIBUTE_ID: an attribute in the document's ID table


cdef bint _shared(xmlNode *top) noexcept:
    """Whether freeing `top`'s subtree would touch more than it: a node with a Python proxy,
    an attribute in the document's ID table (xml:id)."""
    cdef xmlNode *node = top
    cdef xmlAttr *attr
    while True:
        if node._private is not NULL:
            return True
        if node.type == ELEMENT:
            attr = node.properties
            while attr is not NULL:
                if attr.atype == ATTRIBUTE_ID:
                    return True
                attr = attr.next
            if node.children is not NULL:
                node = node.children
                continue
        while node is not top and node.next is NULL:
            node = node.parent
        if node is top:
            return False
        node = node.next


cdef class Detached:
    """Subtrees unlinked from their document, each freed once (by `free`, or when this is).
    It holds an element of that document, so the document (whose string dictionary the
    freeing reads) outlives them."""

    cdef xmlNode **nodes
    cdef Py_ssize_t count
    cdef object owner

    def __dealloc__(self):
        self._free()

    def free(self):
        """Free the subtrees, without the GIL."""
        self._free()

    cdef void _free(self) noexcept:
        cdef Py_ssize_t i
        cdef xmlNode **nodes = self.nodes
        self.nodes = NULL
        if nodes is NULL:
            return
        with nogil:
            for i in range(self.count):
                _free_node(nodes[i])
        c_free(nodes)


def detach(model, Py_ssize_t count):
    """The first `count` children of the element `model` cut out of its tree with their tails
    (as `del model[:count]` removes them; its text stays) as a Detached, or None where they
    cannot be freed apart (`_shared`, a child that is not an element, fewer children, no
    xmlFreeNode)."""
    cdef xmlNode *parent = (<LxmlElement *>model)._c_node
    cdef xmlNode *start = first_child(parent)
    cdef xmlNode *node = start
    cdef Py_ssize_t i, nodes = 0
    if count <= 0 or _free_node is NULL:
        return None
    for i in range(count):
        if node is NULL or node.type != ELEMENT or _shared(node):
            return None
        node = node.next
        nodes += 1
        while node is not NULL and not is_child(node):  # its tail: text nodes
            if node._private is not NULL:
                return None
            node = node.next
            nodes += 1
    cdef Detached out = Detached.__new__(Detached)
    out.nodes = <xmlNode **>malloc(nodes * sizeof(xmlNode *))
    if out.nodes is NULL:
        raise MemoryError()
    out.count = nodes
    out.owner = model
    cdef xmlNode *before = start.prev
    cdef xmlNode *after = node
    node = start
    for i in range(nodes):
        out.nodes[i] = node
        node = node.next
        out.nodes[i].parent = out.nodes[i].next = out.nodes[i].prev = NULL
    if before is NULL:
        parent.children = after
    else:
        before.next = after
    if after is NULL:
        parent.last = before
    else:
        after.prev = before
    return out


def hollow(model, Py_ssize_t start):
    """What the children of the element `model` from the `start`-th on hold (their children,
    text included) cut out of its tree as a Detached, the children themselves left empty with
    their attributes, or None where it cannot be freed apart (`_shared`, no xmlFreeNode): a
    batch's members once walked, whose elements (Python proxies: records' locators) stay,
    the bulk of the tree freed while still in the cache."""
    cdef xmlNode *member = first_child((<LxmlElement *>model)._c_node)
    cdef xmlNode *node
    cdef Py_ssize_t i, nodes = 0
    if _free_node is NULL:
        return None
    for i in range(start):
        if member is NULL:
            return None
        member = next_child(member)
    cdef xmlNode *first = member
    while member is not NULL:
        if member.type == ELEMENT:
            node = member.children
            while node is not NULL:
                if _shared(node):
                    return None
                nodes += 1
                node = node.next
        member = next_child(member)
    if not nodes:
        return None
    cdef Detached out = Detached.__new__(Detached)
    out.nodes = <xmlNode **>malloc(nodes * sizeof(xmlNode *))
    if out.nodes is NULL:
        raise MemoryError()
    out.count = nodes
    out.owner = model
    i = 0
    member = first
    while member is not NULL:
        if member.type == ELEMENT:
            node = member.children
            member.children = member.last = NULL
            while node is not NULL:
                out.nodes[i] = node
                i += 1
                node = node.next
                out.nodes[i - 1].parent = out.nodes[i - 1].next = out.nodes[i - 1].prev = NULL
        member = next_child(member)
    return out
