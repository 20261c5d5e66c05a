"""The `citypipe` command: ingest, inspect, sql, export, run, listen, new-connector, schema.

The commands over sources are in cli_sources.py, those over the lake in cli_lake.py.

Errors a user can act on are printed as one line naming the input and the reason, with exit
code 2; nothing prints a traceback unless CITYPIPE_DEBUG is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from citypipe import cli_lake, cli_sources

__all__ = ["main"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="citypipe", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    cli_sources.add_commands(sub)
    cli_lake.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from citypipe.geo.errors import CitypipeError

    try:
        return func(args)
    except BrokenPipeError:  # the reader went away (`citypipe sql ... | head`): not an error
        # Python would report the pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CitypipeError as e:
        print(f"citypipe: error: {e}", file=sys.stderr)
        for note in getattr(e, "__notes__", ()):
            print(f"citypipe: also: {note}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not the user's fault: still no traceback unless asked
        if os.environ.get("CITYPIPE_DEBUG"):
            raise
        print(
            f"citypipe: internal error: {type(e).__name__}: {e} (set CITYPIPE_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
