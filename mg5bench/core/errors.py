"""Errors that the CLI turns into one clear line and exit status 2 (no traceback)."""

from __future__ import annotations

from dataclasses import dataclass


class Mg5Error(Exception):
    """Base class for user-facing errors: the message alone must tell the user what to do."""


@dataclass
class DataError(Mg5Error):
    """A problem with one input file or one record in it.

    ``str()`` gives a single line naming the file, the record, the problem and the fix.
    """

    path: str
    record: str | None
    problem: str
    fix: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.path}: {self.record}" if self.record else str(self.path)
        text = f"{where}: {self.problem}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return text

    def __str__(self) -> str:
        return self.line()

    def to_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "record": self.record, "problem": self.problem, "fix": self.fix}


class ConfigError(Mg5Error):
    """A bad setting: unknown name, invalid value, incompatible options."""
