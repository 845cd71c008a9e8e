"""The ``mg5bench`` command line: parse, call ``mg5bench.api`` (or, for annotate and human, ``mg5bench.human``),
print. One module per command group: ``runs`` (run, score, train), ``data`` (ls, data), ``human`` (annotate,
human), ``studies`` (ablate, report); ``common`` holds what they share.

May import: at start-up the standard library and ``mg5bench.core`` only, so ``mg5bench --help`` imports no torch
(or numpy, yaml, PIL); everything else lazily inside a command's handler. Every user-facing error becomes one line
on stderr and exit status 2. What a command prints goes through ``terminal_text``: run folder names, labels
and messages read from a shared runs folder or rating database cannot drive the user's terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from mg5bench import __version__
from mg5bench.cli import data, human, runs, studies
from mg5bench.cli.common import EXAMPLES, QUIET_ENV, Parser, one_line, os_error_fix, quiet_libraries
from mg5bench.core.errors import Mg5Error
from mg5bench.core.escaping import terminal_text

__all__ = ["QUIET_ENV", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: every command group adds its subcommands, in the order ``--help`` lists them."""
    parser = Parser(
        prog="mg5bench",
        description="Evaluate and benchmark interleaved image-and-text generation (MiniGPT-5 and baselines).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mg5bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (runs.add_score, runs.add_run, runs.add_train, data.add_ls, data.add_data, human.add_annotate,
                human.add_human, studies.add_ablate, studies.add_report):  # fmt: skip
        add(sub)
    return parser


class TerminalSafe:
    """A text stream that writes through ``terminal_text`` (every control character but tab and newline escaped);
    everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with quiet_libraries(not getattr(args, "verbose", False)), contextlib.redirect_stdout(TerminalSafe(sys.stdout)):
            return _dispatch(args, parser)
    except Mg5Error as e:
        print(f"mg5bench: error: {terminal_text(one_line(str(e)))}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine or a path, not a record: a full disk, a folder where a file belongs, ...
        where = f"{e.filename}: " if e.filename else ""
        message = terminal_text(one_line(where + str(e.strerror or e)))
        print(f"mg5bench: error: {message} (fix: {os_error_fix(e)})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mg5bench: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    handlers = {"ls": data.cmd_ls, "score": runs.cmd_score, "run": runs.cmd_run, "train": runs.cmd_train,
                "annotate": human.cmd_annotate, "ablate": studies.cmd_ablate, "report": studies.cmd_report}  # fmt: skip
    if args.command in handlers:
        return handlers[args.command](args)
    if args.command == "data":
        return data.cmd_data(args, parser)
    if args.command == "human":
        return human.cmd_human(args, parser)
    parser.print_help()
    return 2
