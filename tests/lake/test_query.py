"""DuckDB views over lake files: every record once, even where files overlap."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from courier.lake.query import LakeQueryError, open_lake, query_lake, view_name

from .lake_helpers import write_segment


def _scalar(root: Path, sql: str) -> object:
    return next(query_lake(root, sql).rows)[0]


def test_an_empty_lake_has_an_empty_events_view(tmp_path: Path) -> None:
    result = query_lake(tmp_path, "select * from events")
    assert list(result.rows) == []
    assert "payload_json" in result.columns and "date" in result.columns


def test_views_cover_every_topic_with_the_date_from_the_path(tmp_path: Path) -> None:
    write_segment(tmp_path, "packages.created", 0, range(0, 10), date(2026, 1, 1))
    write_segment(tmp_path, "packages.created", 1, range(0, 5), date(2026, 1, 2))
    write_segment(tmp_path, "billing-invoices", 0, range(100, 103), date(2026, 1, 2))
    _, views = open_lake(tmp_path)
    assert views.files == 3 and views.deduped_files == 0
    assert views.topic_views == {
        "billing-invoices": ["billing-invoices", "billing_invoices"],
        "packages.created": ["packages.created", "packages_created"],
    }
    rows = list(
        query_lake(
            tmp_path, "select topic, date, count(*) from events group by all order by all"
        ).rows
    )
    assert rows == [
        ("billing-invoices", date(2026, 1, 2), 3),
        ("packages.created", date(2026, 1, 1), 10),
        ("packages.created", date(2026, 1, 2), 5),
    ]
    assert _scalar(tmp_path, 'select count(*) from "packages.created"') == 15
    assert _scalar(tmp_path, "select count(*) from billing_invoices") == 3


def test_overlapping_files_are_read_once_per_offset(tmp_path: Path) -> None:
    # A crash between rename and commit: the re-read cut the same records differently.
    write_segment(tmp_path, "t", 0, range(0, 100))
    write_segment(tmp_path, "t", 0, range(0, 60))
    write_segment(tmp_path, "t", 0, range(60, 150))
    write_segment(tmp_path, "t", 0, range(150, 200))  # no overlap: read as is
    write_segment(tmp_path, "t", 1, range(0, 100))  # same offsets, other partition
    _, views = open_lake(tmp_path)
    assert views.deduped_files == 3
    assert _scalar(tmp_path, "select count(*) from events") == 300
    assert _scalar(tmp_path, "select count(distinct id) from events") == 300
    assert _scalar(tmp_path, 'select count(distinct (partition, "offset")) from t') == 300


def test_an_identical_rewrite_replaces_the_file(tmp_path: Path) -> None:
    first = write_segment(tmp_path, "t", 0, range(0, 10))
    again = write_segment(tmp_path, "t", 0, range(0, 10))
    assert first == again
    assert _scalar(tmp_path, "select count(*) from events") == 10


def test_decoded_json_is_queryable(tmp_path: Path) -> None:
    write_segment(tmp_path, "t", 0, [5])
    rows = list(query_lake(
        tmp_path, "select payload_json->>'$.package.tracking_code', json_extract(payload_json, "
        "'$.package.weight_grams')::int from events",
    ).rows)  # fmt: skip
    assert rows == [("BR000000005", 105)]


def test_bad_sql_is_a_usage_error_and_runtime_errors_are_failures(tmp_path: Path) -> None:
    with pytest.raises(LakeQueryError) as syntax:
        query_lake(tmp_path, "selec 1")
    assert syntax.value.exit_code == 2
    with pytest.raises(LakeQueryError) as missing:
        query_lake(tmp_path, "select * from nowhere")
    assert missing.value.exit_code == 2
    with pytest.raises(LakeQueryError) as runtime:
        query_lake(tmp_path, "select cast('x' as int)")
    assert runtime.value.exit_code == 1


def test_view_aliases_need_no_quotes() -> None:
    assert view_name("packages.delivered") == "packages_delivered"
    assert view_name("a-b.c") == "a_b_c"


def test_a_topic_called_events_does_not_hide_the_events_view(tmp_path: Path) -> None:
    write_segment(tmp_path, "events", 0, range(3))
    write_segment(tmp_path, "other", 0, range(2))
    assert _scalar(tmp_path, "select count(*) from events") == 5
    assert json.loads(json.dumps(open_lake(tmp_path)[1].topic_views))["events"] == []
