# citygml_choice.choose in C (included by gml_walk.pyx) for the record most objects of a road
# or city furniture file are: thematic surfaces alone (no geometry of its own, no footprint),
# their polygons inline (no xlink to resolve). Any other record is chosen in Python.


def choose_surfaces(rec) -> bool:
    """citygml_choice.choose of a record whose geometry is thematic surfaces alone, of inline
    polygons: its lod, polygons and surface_handles set, as the Python code sets them; False,
    nothing written, for any other record."""
    cdef list surfaces = rec.surfaces
    cdef long lod, top = -1
    if rec.geometries or rec.footprint or not surfaces:
        return False
    for surface in surfaces:
        if type(surface) is not tuple or len(<tuple>surface) != 3 or type(surface[1]) is not int:
            return False
        lod = surface[1]
        if lod > top or top == -1:
            top = lod
    cdef list chosen = [], polygons = []
    for surface in surfaces:
        if <long>surface[1] != top:
            continue
        refs = surface[2]
        if type(refs) is not list:
            return False
        for r in <list>refs:
            if type(r) is not int:
                return False
        chosen.append((surface[0], refs))
        polygons.extend(<list>refs)
    rec.lod = top
    rec.polygons, rec.surface_handles = polygons, chosen
    rec.geometries, rec.surfaces, rec.footprint = [], [], []
    return True
