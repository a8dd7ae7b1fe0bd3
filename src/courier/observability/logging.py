"""Log lines of every long-running Courier process: JSON lines or text, never a secret.

``configure_logging()`` sends the ``courier.*`` loggers to stdout in one of two formats:

- ``json``: one object per line -- ``time`` (RFC 3339, UTC), ``level``, ``logger``,
  ``message``, then the record's ``extra`` fields (``consumer``, ``event_id``, ...), and
  ``exception`` when there is one;
- ``text``: ``12:00:01 warning delivery failed  consumer=a method=/x.v1.S/M ...``.

The format is ``--log-format`` (the ``log_format`` argument), else ``$COURIER_LOG_FORMAT``,
else JSON when stdout is not a terminal and text when it is.

Both formatters pass every value through :func:`redact`: credentials in URLs
(``postgresql://user:***@host/db``), ``password=``/``token=`` style pairs and bearer tokens
in text, fields whose name says secret (``password``, ``token``, ``authorization``, ...), and
raw ``bytes`` (payloads) which become ``<N bytes>``. Redaction is the safety net; the code
that logs still never hands a payload or a key file's content to a logger.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

LOG_FORMAT_ENV = "COURIER_LOG_FORMAT"
LOG_FORMAT_HELP = "json or text [env COURIER_LOG_FORMAT; default: json unless stdout is a tty]."
"""The ``--log-format`` help every long-running command shows."""
REDACTED = "***"

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|authorization"
    r"|credentials?|private[_\-]?key)(?:$|[_\-.])",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@]*):[^\s/@]*@")
_SECRET_PAIR = re.compile(
    r"(?P<head>\b(?:[\w.\-]*(?:password|passwd|pwd|secret|token|api[-_]?key))\s*[=:]\s*)"
    r"(?P<quote>['\"]?)[^\s'\",;&]+(?P=quote)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\b(?:bearer|basic)\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)


class LogFormat(StrEnum):
    """How log lines look: ``json`` for machines, ``text`` for people at a terminal."""

    json = "json"
    text = "text"


def resolve_log_format(flag: str | None = None, stream: TextIO | None = None) -> LogFormat:
    """The format to use: ``flag``, else ``$COURIER_LOG_FORMAT``, else by terminal-ness.

    Raises ``ValueError`` with a one-line message naming the flag or variable when the value
    is neither ``json`` nor ``text``.

    >>> resolve_log_format("json")
    <LogFormat.json: 'json'>
    """
    for value, origin in ((flag, "--log-format"), (os.environ.get(LOG_FORMAT_ENV), LOG_FORMAT_ENV)):
        if value:
            try:
                return LogFormat(value.strip().lower())
            except ValueError:
                raise ValueError(f"{origin} must be json or text, not {value!r}") from None
    out = stream or sys.stdout
    return LogFormat.text if _isatty(out) else LogFormat.json


def redact_text(text: str) -> str:
    """``text`` with URL credentials, ``password=...`` pairs and bearer tokens masked.

    >>> redact_text("cannot connect to postgresql://app:s3cret@db:5432/shop")
    'cannot connect to postgresql://app:***@db:5432/shop'
    >>> redact_text("host=db password=s3cret dbname=shop")
    'host=db password=*** dbname=shop'
    """
    text = _URL_CREDENTIALS.sub(rf"\g<head>:{REDACTED}@", text)
    text = _SECRET_PAIR.sub(rf"\g<head>\g<quote>{REDACTED}\g<quote>", text)
    return _BEARER.sub(rf"\g<head>{REDACTED}", text)


def redact(value: object, name: str = "") -> object:
    """A log-safe copy of ``value`` (a field called ``name``): see the module docstring."""
    if name and _SECRET_NAME.search(name) and value not in (None, ""):
        return REDACTED
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact_text(str(value))


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {
        name: redact(value, name)
        for name, value in vars(record).items()
        if name not in _STANDARD and not name.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for name, value in _extras(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01 info    relay streaming  slot=courier_relay`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = f"{when} {record.levelname.lower():<7} {redact_text(record.getMessage())}"
        text = f"{text}  {extras}" if extras else text
        if record.exc_info:
            text += "\n" + redact_text(self.formatException(record.exc_info))
        return text


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonFormatter() if log_format is LogFormat.json else TextFormatter()


def configure_logging(
    level: int = logging.INFO,
    stream: TextIO | None = None,
    log_format: LogFormat | str | None = None,
    *,
    logger_name: str = "courier",
    keep_existing: bool = False,
) -> Callable[[], None]:
    """Send ``logger_name``'s records (``courier.*`` by default) to stdout in one format.

    ``logger_name=""`` configures the root logger (the consumer kit, which shares the app's
    process); with ``keep_existing`` a logger that already has handlers is left alone, so an
    app's own logging setup wins. Returns a function that puts the previous configuration
    back (for in-process callers and tests). Raises ``ValueError`` for an unknown format.
    """
    out = stream or sys.stdout
    chosen = resolve_log_format(log_format, out)
    target = logging.getLogger(logger_name or None)
    if keep_existing and target.handlers:
        return lambda: None
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter_for(chosen))
    saved = (target.handlers[:], target.level, target.propagate)
    target.handlers[:] = [handler]
    target.setLevel(level)
    if logger_name:
        target.propagate = False

    def restore() -> None:
        target.handlers[:], target.level, target.propagate = saved[0], saved[1], saved[2]

    return restore


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
