# cython: language_level=3, boundscheck=False, wraparound=False
"""The members of a GeoJSON batch's features, gathered by a compiled loop (geojson._batch):
the same lists as the Python loop (geojson._members), which pays a method call for each of a
feature's ten or so lookups and appends (Barcelona's 1,988 fountains: 0.47 ms in Python,
0.19 here). Ids that are not text are written by `id_text`, the Python way's own function."""


def members(object features, str geometry_key, object collection_class, object id_text):
    """Ids, properties, classes, times, geometries, and which features are not Features,
    have only a `place`, declare their own `crs`, or have properties that are not an object."""
    cdef list ids = [], props = [], classes = [], observed = [], geoms = []
    cdef list not_features = [], on_place = [], own_crs = [], bad_properties = []
    cdef dict f
    cdef dict empty = {}  # what a record that is not a Feature is read as: nothing
    cdef Py_ssize_t k = 0
    cdef object item, i, p, c, t, g
    for item in features:
        if type(item) is dict and (<dict>item).get("type") == "Feature":
            f = <dict>item
        else:
            not_features.append(k)
            f = empty
        i = f.get("id")
        ids.append(i if i is None or type(i) is str else id_text(i))
        p = f.get("properties")
        if type(p) is dict:
            props.append(p)
        else:
            props.append({})
            if p is not None:
                bad_properties.append(k)
        c = f.get("featureType") or collection_class
        classes.append(None if c is None else str(c))
        t = f.get("time")
        observed.append(
            ((<dict>t).get("instant") or (<dict>t).get("date")) if type(t) is dict else None
        )
        g = f.get(geometry_key)
        geoms.append(g)
        if g is None and f.get("place") is not None:
            on_place.append(k)
        elif "crs" in f or (type(g) is dict and "crs" in <dict>g):
            own_crs.append(k)
        k += 1
    return ids, props, classes, observed, geoms, not_features, on_place, own_crs, bad_properties
