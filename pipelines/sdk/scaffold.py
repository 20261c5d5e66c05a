"""`citypipe new-connector NAME`: a connector package a city starts from, complete and green.

The package (citypipe-NAME/) holds a working connector for JSON Lines of point records, a
sample, its test (the conformance kit plus facts of the sample) and the entry point that makes
citypipe find the connector once the package is installed: the developer changes what the
format needs and keeps the tests passing.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from citypipe.connectors.registry import available
from citypipe.geo.errors import ConfigurationError

__all__ = ["scaffold"]

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def _templates(folder: Traversable, at: str = "") -> list[tuple[str, Traversable]]:
    """(relative path without .tmpl, template) of every template under `folder`."""
    found = []
    for entry in folder.iterdir():
        path = f"{at}{entry.name}"
        if entry.is_dir():
            found += _templates(entry, path + "/")
        elif entry.name.endswith(".tmpl"):
            found.append((path.removesuffix(".tmpl"), entry))
    return found


def scaffold(name: str, dest: Path) -> Path:
    """Write the package of connector `name` into `dest`/citypipe-`name`; its folder."""
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"connector name {name!r}: lower-case letters and digits, words joined by - or _"
        )
    if name in available():
        raise ConfigurationError(f"a connector {name!r} exists already; choose another name")
    target = dest / f"citypipe-{name}"
    if target.exists():
        raise ConfigurationError(f"{target} exists already; nothing written")
    words = re.split(r"[-_]", name)
    package = "citypipe_" + "_".join(words)
    values = {
        "name": name,
        "package": package,
        "class_name": "".join(w.capitalize() for w in words) + "Connector",
        "title": " ".join(w.capitalize() for w in words),
    }
    for relative, template in _templates(files("citypipe.sdk") / "template"):
        relative = f"{package}/{relative}" if relative == "connector.py" else relative
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(Template(template.read_text(encoding="utf-8")).substitute(values))
    (target / package / "__init__.py").write_text(
        f'"""{values["title"]}: a citypipe connector."""\n'
    )
    return target
