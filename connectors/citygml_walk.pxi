# CityGML objects' properties read in C (included by gml_walk.pyx): ObjectReader._object and
# _properties' loop, and the readers of what most properties are (geometry, plain attributes,
# generic string attributes, thematic surfaces, nested objects, terrain intersections skipped)
# for the elements they read as the Python readers do; any other element is handed to its
# Python reader as lxml's element.

cdef object Parts = None, INTEGERS = None, add = None, Record = None
cdef object read_geometry = None, read_property = None, read_named = None, read_surfaces = None
cdef object read_children = None, read_skip = None
cdef dict FOREIGN = {}
"""The other GML's namespace (its gml:id is an object's source_id too) by the document's."""


cdef void setup() except *:
    """What the readers of citygml_objects are, once they are all imported."""
    global Parts, INTEGERS, add, Record, read_geometry, read_property, read_named, read_surfaces
    global read_children, read_skip
    from citypipe.connectors.citygml_attributes import _named, property_, skip
    from citypipe.connectors.citygml_objects import ObjectReader
    from citypipe.connectors.citygml_records import Record as Record_
    from citypipe.connectors.citygml_values import _INTEGERS, add as add_
    from citypipe.connectors.gml import GML_NAMESPACES, Parts as Parts_

    Parts, read_geometry, read_property = Parts_, ObjectReader._geometry, property_
    read_named, read_surfaces, read_children = _named, ObjectReader._surfaces, ObjectReader._children
    INTEGERS, add, read_skip, Record = _INTEGERS, add_, skip, Record_
    for ns in GML_NAMESPACES:
        FOREIGN[ns.encode()] = next(o for o in GML_NAMESPACES if o != ns).encode()


cdef list polygons_of(reader, _Walk walk, xmlNode *node):
    """The polygon handles of ObjectReader._read_geometry's Parts for a property holding one
    surface, an xlink:href to one or nothing (None: anything else, nothing written); a
    thematic surface's need no Parts made (a Python __init__ per surface)."""
    cdef object href = None
    cdef xmlNode *child
    cdef list polygons
    if node.properties is not NULL:
        href = attribute(node, XLINK, b"href")
        if href is UNREAD:
            return None
    if href is not None:
        return [href.removeprefix("#")]
    child = first_child(node)
    polygons = []
    if child is not NULL and (
        next_child(child) is not NULL or not read_node(reader, walk, child, polygons)
    ):
        return None
    return polygons


cdef int geometry(reader, _Walk walk, rec, xmlNode *node, tuple args) except FAILED:
    """ObjectReader._geometry where `polygons_of` reads the property."""
    polygons = polygons_of(reader, walk, node)
    if polygons is None:
        return OTHER
    parts = Parts(polygons)
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
        add_to(properties, name, text_of(child).strip())  # "" kept: citygml_values.typed
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


cdef dict NAMES = {}
"""One str per element name of a thematic surface or object, handed out for each of that
name (its type, its feature_class): a batch's 18,000 surfaces of a handful of types pickle as
references to a few strings, not each in full, and unpickle to a few objects (the 422 MB
file's batches: pickled in 37-44 ms against 37-54, read in 21-28 against 24-40, 5 % smaller;
docs/benchmark.md)."""


cdef str name_of(const xmlChar *name):
    text = decode(name)
    if len(NAMES) < 1024:  # a document of made-up names does not grow it for ever
        return NAMES.setdefault(text, text)
    return NAMES.get(text, text)


cdef object thematic(dict kinds, geometry_reader, _Walk walk, rec, xmlNode *surface):
    """ObjectReader._thematic of a surface whose properties are attributes `read_attribute`
    reads and at most one geometry property that `polygons_of` reads: its entry for the record's
    properties ({}: none); None, nothing written, for any other surface. `kinds`, the object
    reader's; `walk`, that of its `geometry_reader` (looked up once a record)."""
    cdef dict properties = {}
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
    sid = attribute(surface, walk.ns, b"id")
    if sid is UNREAD:
        return None
    refs = []
    feature_class = name_of(surface.name)
    if geometry_property is not NULL:
        polygons = polygons_of(geometry_reader, walk, geometry_property)
        if polygons is None:
            return None
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


cdef int surfaces(
    reader, dict kinds, geometry_reader, _Walk walk, rec, xmlNode *node, tuple args, void *doc
) except FAILED:
    """ObjectReader._surfaces: thematic surfaces read by `thematic`, the others by
    ObjectReader._thematic (OTHER: a property holding anything but elements)."""
    cdef xmlNode *surface = first_child(node)
    while surface is not NULL:
        if surface.type != ELEMENT:
            return OTHER
        surface = next_child(surface)
    key, properties = args[0], rec.properties
    if node.properties is not NULL:
        href = attribute(node, XLINK, b"href")
        if href is UNREAD:
            return OTHER
        add_to(properties, key, href)
    surface = first_child(node)
    while surface is not NULL:
        entry = thematic(kinds, geometry_reader, walk, rec, surface)
        if entry is None:
            entry = reader._thematic(rec, element_of(doc, surface))
        if entry:
            listed(properties, key).append(entry)
        surface = next_child(surface)
    return DONE


cdef inline list listed(dict properties, key):
    """citygml_values.listed: the list under `key`, made where there is none; a value there
    that is no list (an xlink:href given beside the surfaces) its first item."""
    values = properties.setdefault(key, [])
    if not isinstance(values, list):
        values = properties[key] = [values]
    return <list>values


cdef int children(reader, rec, xmlNode *node, tuple args, void *doc) except FAILED:
    """ObjectReader._children: the objects a part-of property holds, each read by `object_`
    (OTHER: a property holding anything but elements)."""
    cdef xmlNode *child = first_child(node)
    while child is not NULL:
        if child.type != ELEMENT:
            return OTHER
        child = next_child(child)
    if node.properties is not NULL:
        href = attribute(node, XLINK, b"href")
        if href is UNREAD:
            return OTHER
        add_to(rec.properties, args[0], href)
    child = first_child(node)
    while child is not NULL:
        if object_(reader, child, rec, doc) != DONE:
            reader._object(element_of(doc, child), rec)
        child = next_child(child)
    return DONE


cdef int object_(reader, xmlNode *node, parent, void *doc) except FAILED:
    """ObjectReader._object: the record of the object `node` (of `parent`; None: a top-level
    object), its properties read by `read_properties` (else by ObjectReader._properties);
    OTHER, nothing written, where a gml:id is not one text node or a DTD could give one."""
    if not readable(node):
        return OTHER
    geometry_reader = reader.geometry
    cdef _Walk walk = walk_of(geometry_reader)
    gid = sid = None
    if node.properties is not NULL:
        gid = sid = attribute(node, walk.ns, b"id")
        if gid is None:
            foreign = <bytes>FOREIGN[walk.gml_ns]
            sid = attribute(node, foreign, b"id")
        if gid is UNREAD or sid is UNREAD:
            return OTHER
    tag = tag_of(node)
    cdef dict seen = reader._seen_tags
    nth = seen.get(tag, -1) + 1
    seen[tag] = nth
    cdef list records = reader.records
    index = PyList_GET_SIZE(records)
    locator = (reader._member, tag, nth if gid is None else gid)
    rec = Record(locator, sid, name_of(node.name), parent, index)
    records.append(rec)
    if gid is not None:
        reader.objects[gid] = index
        annotations = reader.annotations
        if annotations.pending:
            for key, value in annotations.claim(gid):
                rec.properties.setdefault(key, []).append(value)
    srs = geometry_reader.srs_name
    geometry_reader.srs_name, geometry_reader.record = None, index
    if not read_properties(reader, rec, node, doc):
        reader._properties(rec, element_of(doc, node))
    if not rec.crs:
        rec.crs = geometry_reader.srs_name
    geometry_reader.srs_name = srs
    geometry_reader.record = 0 if parent is None else parent.index
    return DONE


def read_object(reader, elem, parent) -> bool:
    """ObjectReader._object of `elem` read here (`object_`): whether it was (False: nothing
    written, the Python code reads it)."""
    if Record is None:
        setup()
    if not isinstance(elem, _Element):
        return False
    cdef LxmlElement *proxy = <LxmlElement *>elem
    return object_(reader, proxy._c_node, parent, proxy._doc) == DONE


def properties(reader, rec, elem) -> bool:
    """ObjectReader._properties of `elem` read here (`read_properties`): whether it was."""
    if Record is None:
        setup()
    if not isinstance(elem, _Element):
        return False
    cdef LxmlElement *proxy = <LxmlElement *>elem
    return read_properties(reader, rec, proxy._c_node, proxy._doc)


cdef bint read_properties(reader, rec, xmlNode *node, void *doc) except -1:
    """ObjectReader._properties: each property of `node` read by the reader its tag is
    classified to; geometry properties, attributes, thematic surfaces and nested objects
    (`geometry`, `read_attribute`, `surfaces`, `children`) read here where they can be.
    False, nothing read, where an element holds anything but elements (the Python loop)."""
    if not readable(node):
        return False
    cdef xmlNode *child = first_child(node)
    while child is not NULL:
        if child.type != ELEMENT:
            return False
        child = next_child(child)
    cdef dict kinds = reader._kinds
    geometry_reader = reader.geometry
    cdef _Walk walk = walk_of(geometry_reader)
    child = first_child(node)
    while child is not NULL:
        kind = kinds.get(tag_of(child))
        proxy = None
        if kind is None:
            proxy = element_of(doc, child)
            kind = reader._classify(proxy)
        on_record, read_, args = kind
        if read_ is read_geometry:
            done = geometry(geometry_reader, walk, rec, child, <tuple>args)
        elif read_attribute(rec.properties, child, read_, <tuple>args):
            done = DONE
        elif read_ is read_surfaces:
            done = surfaces(reader, kinds, geometry_reader, walk, rec, child, <tuple>args, doc)
        elif read_ is read_children:
            done = children(reader, rec, child, <tuple>args, doc)
        elif read_ is read_skip:
            done = DONE
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
