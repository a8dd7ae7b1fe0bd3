"""What is wrong with a broker config file: one :class:`ConfigProblem` per defect.

:class:`ConfigError` carries them all, so a user fixes a file in one pass. Each prints on
one line as ``<file>:<line>: <key path>: <message>``, e.g.::

    broker.yaml:12: consumers.service-a.grpc-server-port: must be an integer port 1-65535, got "abc"
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_path(parts: Path) -> str:
    """``("consumers", "a", "distribution", 0, "topic")`` -> ``consumers.a.distribution[0].topic``.

    Keys that would read ambiguously (a dot, a space, empty) are quoted.
    """
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _PLAIN_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        text += f".{key}" if text else key
    return text


@dataclass(frozen=True)
class ConfigProblem:
    """One defect: where (dotted key path, 1-based line when known) and what."""

    key_path: str
    line: int | None
    message: str

    def format(self, source: str) -> str:
        """The problem on one line, prefixed by ``source`` (the file name as the user gave it)."""
        where = source if self.line is None else f"{source}:{self.line}"
        message = " ".join(self.message.split())
        return f"{where}: {self.key_path}: {message}" if self.key_path else f"{where}: {message}"


class ConfigError(Exception):
    """A broker config that cannot be used. ``problems`` lists every defect, in file order.

    ``str(error)`` is one line per problem, ready to print; no traceback is meant to reach a
    user (``courier broker check`` prints this and exits 2).
    """

    def __init__(self, problems: list[ConfigProblem], source: str = "<config>") -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.line if p.line is not None else 1 << 30, p.key_path)
        )
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """Each problem formatted on its own line."""
        return [problem.format(self.source) for problem in self.problems]
