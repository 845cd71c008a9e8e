"""Untrusted strings (model names, axis labels and descriptions, run folder names, protocol values, sample texts,
error messages) written into Markdown and CSV files. HTML is escaped where it is built (``html.escape``); these are
the Markdown and spreadsheet counterparts:

- Markdown: a value shows as its literal text, never as a link, an image, raw HTML, emphasis or an extra table
  cell (CommonMark backslash escapes; code spans and fences longer than any backtick run in the value).
- CSV: a cell that a spreadsheet would read as a formula (starting with ``= + - @``, a tab or a carriage return)
  is prefixed with a single quote, as OWASP recommends against CSV injection.
- Terminal: control characters (ESC starts sequences that move the cursor, clear the screen, retitle the window
  or hide text; a carriage return overwrites the line) and bidirectional overrides are printed as escapes.
"""

from __future__ import annotations

import re
from typing import Any

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that start inline markup in the
# middle of a line: links and images ([ ]), emphasis (* and _ at a word's edge: inside a word _ is text), code (`),
# raw HTML and autolinks (< >), entities (& before name;), strikethrough (~) and table cells (|).
_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?[A-Za-z0-9]+;)")
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# C0 controls but tab and newline, DEL and C1 controls, and the bidirectional marks, embeddings and overrides
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _flat(value: Any) -> str:
    """One line: a newline in a value would end a table row or start a new Markdown block."""
    return " ".join(str(value).replace("\x00", "").split())


def md_text(value: Any) -> str:
    """``value`` as literal Markdown inline text (one line)."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), _flat(value))


def md_code(value: Any, *, table: bool = False) -> str:
    """``value`` as a Markdown code span (one line), its fence longer than any backtick run in it. In a table cell
    (``table``) a '|' is written '\\|', which GFM tables require even inside code."""
    text = _flat(value)
    if table:
        text = text.replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(text: str) -> str:
    """A fenced code block holding ``text`` verbatim: the fence is longer than any backtick run in it, so no line
    of ``text`` can close the block early."""
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}\n{text.replace(chr(0), '')}\n{fence}"


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet evaluates: text starting like a formula gets a leading single quote; numbers
    and other values are returned unchanged."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return value


def terminal_text(text: str) -> str:
    """``text`` as a terminal shows it literally: every control character but tab and newline, and every
    bidirectional control, written as a Python-style escape (``\\x1b``, ``\\u202e``)."""

    def escape(m: re.Match[str]) -> str:
        code = ord(m.group(0))
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _TERMINAL_UNSAFE.sub(escape, text)
