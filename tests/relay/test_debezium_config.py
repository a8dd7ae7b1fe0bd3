"""The Debezium connector JSON: option names as Debezium 3.6.1 and Kafka Connect spell them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from courier.cli import app
from courier.relay.debezium import connector_config


def test_routes_keys_values_and_headers_like_the_relay() -> None:
    config = connector_config(
        database_url="postgresql://postgres:s3cret@db:5433/shop", table="courier_outbox"
    )
    assert config["database.hostname"] == "db"
    assert config["database.port"] == "5433"
    assert config["database.password"] == "s3cret"
    assert config["database.dbname"] == "shop"
    assert config["table.include.list"] == "public.courier_outbox"
    assert config["plugin.name"] == "pgoutput"
    assert config["value.converter"] == "io.debezium.converters.BinaryDataConverter"
    assert config["transforms.outbox.route.by.field"] == "topic"
    assert config["transforms.outbox.route.topic.replacement"] == "${routedByValue}"
    assert config["transforms.outbox.table.field.event.key"] == "key"
    placement = config["transforms.outbox.table.fields.additional.placement"].split(",")
    assert placement == [
        "id:header:ce_id",
        "source:header:ce_source",
        "type:header:ce_type",
        "created_at:header:ce_time",
        "specversion:header:ce_specversion",
    ]
    assert config["transforms"].split(",") == ["outbox", "dropid", "contenttype"]
    assert config["extended.headers.enabled"] == "false"
    assert all(isinstance(v, str) for v in config.values())


def test_no_password_no_password_key() -> None:
    assert "database.password" not in connector_config(database_url="postgresql://u@h/db")


def test_schema_qualified_table() -> None:
    config = connector_config(database_url="postgresql://u@h/db", table="app.events_outbox")
    assert config["table.include.list"] == "app.events_outbox"


def test_only_postgres() -> None:
    with pytest.raises(ValueError, match="Postgres"):
        connector_config(database_url="mysql://u@h/db")


def test_cli_prints_the_post_body() -> None:
    result = CliRunner().invoke(
        app,
        [
            "relay",
            "debezium-config",
            "--database-url",
            "postgresql://postgres@127.0.0.1:15432/courier",
            "--name",
            "shop-outbox",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["name"] == "shop-outbox"
    assert body["config"]["topic.prefix"] == "shop-outbox"
    only = CliRunner().invoke(
        app, ["relay", "debezium-config", "--config-only", "--database-url", "postgresql://u@h/db"]
    )
    assert "connector.class" in json.loads(only.output)


def test_cli_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(app, ["relay", "debezium-config", "--database-url", "mysql://h/d"])
    assert result.exit_code == 2
    result = CliRunner().invoke(
        app, ["relay", "run", "--mode", "log", "--database-url", "sqlite:///x.db"]
    )
    assert result.exit_code == 2
