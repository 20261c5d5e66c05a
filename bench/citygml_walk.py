"""What the compiled walk (connectors/gml_walk.pyx) saves of the CityGML reader's walk (issue 17).

The reader's walk (`ObjectReader.member`) is Python over lxml's elements, but for what
gml_walk reads in C over libxml2's nodes: the geometry properties and their surfaces, and the
loop over an object's properties. This times, on members already parsed (CPU ms, best of
`--repeat`, the two walks alternated, in one process, the cycle collector paused as ingest runs):
  compiled  the reader's walk of every member, with gml_walk
  python    the same walk with the Python code alone (what runs where gml_walk did not build)
  bare      every element's tag and text met once in Python (lxml's share of any Python walk)

    python bench/citygml_walk.py [--repeat 9] FILE ...
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from citypipe.connectors import gml
from citypipe.connectors.citygml_header import model_members, read_header
from citypipe.connectors.citygml_objects import ObjectReader


def _time(function: Callable[[], Any]) -> float:
    gc.disable()
    try:
        start = time.process_time()
        function()
        return time.process_time() - start
    finally:
        gc.enable()


def measure(path: Path, repeat: int) -> dict[str, float]:
    header = read_header(path)
    with path.open("rb") as f:
        members = [member for _, member in model_members(f, huge_tree=False)]
    compiled = gml.compiled

    def walk() -> None:
        reader = ObjectReader(path, header, 1 << 30)
        for member in members:
            reader.member(member)

    def bare() -> None:
        for member in members:
            for elem in member.iter():
                elem.tag, elem.text  # noqa: B018 - met, as any walk meets it

    times = dict.fromkeys(("compiled", "python", "bare"), float("inf"))
    try:
        for _ in range(repeat):
            for name, module in (("compiled", compiled), ("python", None)):
                gml.compiled = module
                times[name] = min(times[name], _time(walk))
            times["bare"] = min(times["bare"], _time(bare))
    finally:
        gml.compiled = compiled
    return {k: v * 1000 for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    if gml.compiled is None:
        raise SystemExit("gml_walk is not built: `make setup` builds it")
    columns = ("compiled", "python", "bare")
    head = f"{'file':44}" + "".join(f" {c:>9}" for c in columns) + " compiled/python"
    print(f"CPU ms, best of {args.repeat}\n{head}\n{'-' * len(head)}")
    for path in args.files:
        t = measure(path, args.repeat)
        print(
            f"{path.name[:44]:44}"
            + "".join(f" {t[c]:9.1f}" for c in columns)
            + f" {t['compiled'] / t['python']:15.2f}"
        )


if __name__ == "__main__":
    main()
