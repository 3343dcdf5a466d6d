"""The one HistoryFilter and its time parser, shared by the magics, the CLI and the Workspace."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

import pytest

from hooklab.store.filters import HistoryFilter, TimeFormatError, parse_time

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00", datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)),  # UTC if unsaid
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)),
        ("2024-05-01 13:00", datetime(2024, 5, 1, 13, 0, tzinfo=timezone.utc)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        (" 2024-05-01T14:00+02:00 ", datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)),
        ("30s", NOW - timedelta(seconds=30)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        ("1w", NOW - timedelta(weeks=1)),
        ("1.5h", NOW - timedelta(minutes=90)),
        (" 2 H ", NOW - timedelta(hours=2)),
    ],
)
def test_times_are_iso_8601_or_ages(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_an_age_counts_back_from_the_clock() -> None:
    assert abs(datetime.now(timezone.utc) - timedelta(hours=2) - parse_time("2h")) < timedelta(
        minutes=1
    )


@pytest.mark.parametrize("text", ["yesterday", "last tuesday", "", "15", "-1h", "1y", "2 hours"])
def test_anything_else_is_refused_in_one_line_naming_it_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(TimeFormatError) as refused:
        parse_time(text)
    message = str(refused.value)
    assert message.startswith(f"{text!r} is not a time: use ISO 8601")
    assert "30m, 2h, 1d, 1w" in message and "\n" not in message
    # Python callers catch a ValueError; argparse reports the message as it is.
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value, argparse.ArgumentTypeError)


def test_argparse_shows_the_parsers_own_message() -> None:
    parser = argparse.ArgumentParser(prog="p", exit_on_error=False)
    parser.add_argument("--since", type=parse_time)
    with pytest.raises(argparse.ArgumentError, match="'soon' is not a time: use ISO 8601"):
        parser.parse_args(["--since", "soon"])


def test_a_filter_reads_times_as_text_and_narrows_a_filter() -> None:
    base = HistoryFilter("models", since=NOW)
    narrowed = HistoryFilter.of(base, event="model-update", until="2026-05-02")
    assert narrowed == HistoryFilter(
        "models", "model-update", NOW, datetime(2026, 5, 2, tzinfo=timezone.utc), None
    )
    assert HistoryFilter.of(since=datetime(2026, 5, 1)).since == datetime(
        2026, 5, 1, tzinfo=timezone.utc
    )
    with pytest.raises(AttributeError):
        narrowed.event = "other"  # type: ignore[misc]
