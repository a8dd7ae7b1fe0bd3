"""JSON and text log lines, the format choice, and redaction of secrets and payload bytes."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courier.observability.logging import (
    LOG_FORMAT_ENV,
    JsonFormatter,
    LogFormat,
    TextFormatter,
    configure_logging,
    redact,
    redact_text,
    resolve_log_format,
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(message: str = "hello", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("courier.test", logging.WARNING, __file__, 1, message, None, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_format_from_flag_then_env_then_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    assert resolve_log_format(None, io.StringIO()) is LogFormat.json
    assert resolve_log_format(None, Tty()) is LogFormat.text
    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    assert resolve_log_format(None, Tty()) is LogFormat.json
    assert resolve_log_format("TEXT", io.StringIO()) is LogFormat.text


def test_a_bad_format_names_its_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="--log-format must be json or text, not 'xml'"):
        resolve_log_format("xml")
    monkeypatch.setenv(LOG_FORMAT_ENV, "yaml")
    with pytest.raises(ValueError, match=f"{LOG_FORMAT_ENV} must be json or text"):
        resolve_log_format(None)


def test_configure_logging_writes_the_chosen_format_and_restores() -> None:
    courier = logging.getLogger("courier")
    before = (courier.handlers[:], courier.level, courier.propagate)
    stream = io.StringIO()
    restore = configure_logging(stream=stream, log_format="text")
    try:
        logging.getLogger("courier.relay").info("streaming", extra={"slot": "s1"})
    finally:
        restore()
    assert stream.getvalue().rstrip().endswith("info    streaming  slot=s1")
    assert (courier.handlers, courier.level, courier.propagate) == before

    stream = io.StringIO()
    restore = configure_logging(stream=stream, log_format=LogFormat.json)
    try:
        logging.getLogger("courier.relay").info("streaming", extra={"slot": "s1"})
    finally:
        restore()
    line = json.loads(stream.getvalue())
    assert (line["level"], line["logger"], line["message"], line["slot"]) == (
        "info", "courier.relay", "streaming", "s1",
    )  # fmt: skip


def test_keep_existing_leaves_an_apps_setup_alone() -> None:
    app = logging.getLogger("courier.test.app")
    mine = logging.NullHandler()
    app.addHandler(mine)
    try:
        configure_logging(stream=io.StringIO(), logger_name="courier.test.app", keep_existing=True)
        assert app.handlers == [mine]
    finally:
        app.removeHandler(mine)


def test_json_line_masks_secrets_and_bytes() -> None:
    record = _record(
        "cannot connect to postgresql://app:hunter2@db:5432/shop",
        payload=b"\x08\x96\x01secret-payload",
        token="abc.def.ghi",
        authorization="Bearer abc.def.ghi",
        headers={"password": "hunter2", "ce_id": "e-1"},
        error="sasl.password=hunter2 rejected",
        attempt=2,
    )
    text = JsonFormatter().format(record)
    line = json.loads(text)
    assert "hunter2" not in text and "abc.def.ghi" not in text
    assert "secret-payload" not in text
    assert line["message"] == "cannot connect to postgresql://app:***@db:5432/shop"
    assert line["payload"] == "<17 bytes>"
    assert line["token"] == line["authorization"] == "***"
    assert line["headers"] == {"password": "***", "ce_id": "e-1"}
    assert line["attempt"] == 2


def test_text_line_masks_too() -> None:
    text = TextFormatter().format(_record("dsn host=db password='hunter2' dbname=shop"))
    assert "hunter2" not in text
    assert "password='***'" in text


def test_exception_text_is_masked() -> None:
    try:
        raise ConnectionError("postgresql://app:hunter2@db/shop refused")
    except ConnectionError:
        record = logging.LogRecord(
            "courier.test", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert "hunter2" not in line["exception"]
    assert "postgresql://app:***@db/shop" in line["exception"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:pass@host/db", "postgresql://user:***@host/db"),
        (
            "mysql+pymysql://root:p%40ss@127.0.0.1:3306/x",
            "mysql+pymysql://root:***@127.0.0.1:3306/x",
        ),
        ("http://127.0.0.1:9465/metrics", "http://127.0.0.1:9465/metrics"),
        ("kafka://broker:9092", "kafka://broker:9092"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        ("api_key=AKIA123 other=1", "api_key=*** other=1"),
        ("slot=courier_relay lsn=0/16B3748", "slot=courier_relay lsn=0/16B3748"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@given(user=st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True),
       password=st.from_regex(r"[A-Za-z0-9!$%^*()_+\-=]{4,24}", fullmatch=True))  # fmt: skip
def test_a_database_url_never_shows_its_password(user: str, password: str) -> None:
    url = f"postgresql://{user}:{password}@db.internal:5432/shop"
    masked = redact_text(f"cannot connect to {url}: timeout")
    assert f":{password}@" not in masked
    assert f"postgresql://{user}:***@db.internal:5432/shop" in masked


def test_redact_keeps_plain_values() -> None:
    assert redact(["a", 1, None, True]) == ["a", 1, None, True]
    assert redact("", "password") == ""
    assert redact(3.5, "seconds") == 3.5
