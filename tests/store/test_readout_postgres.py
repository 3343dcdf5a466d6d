"""The readout on PostgreSQL gives what it gives on SQLite: the GitHub corpus stored in both, with
the same ids and clock, then every read compared (PostgreSQL has native types: timestamptz,
boolean, json, bytea; its driver runs in this process)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from readout_corpus import build_corpus
from readout_reference import differences

from hooklab.store.filters import HistoryFilter
from hooklab.store.frames import frame_of
from hooklab.store.readout import Reader, Reading


def test_every_read_gives_the_same_rows_values_and_types_on_both(
    postgres_url: str, tmp_path: Path
) -> None:
    on_postgres = build_corpus(postgres_url, seeded=True)
    on_sqlite = build_corpus(tmp_path / "hooklab.db", seeded=True)
    postgres, sqlite = Reader.of(on_postgres.store), Reader.of(on_sqlite.store)
    events = on_sqlite.events()
    start = events["received"].min().to_pydatetime()
    hooks = {hook.name: hook.id for hook in on_sqlite.list_webhooks()}
    hooks["gone"] = events["webhook_id"][events["webhook_name"].isna()].iloc[0]
    for reading in (
        Reading(),
        Reading(HistoryFilter(webhook=hooks["github"])),
        Reading(HistoryFilter(webhook=hooks["gone"])),  # deleted: its history stays
        Reading(HistoryFilter(event="github.push")),
        Reading(HistoryFilter(failed=True)),
        Reading(HistoryFilter(failed=False, since=start + timedelta(hours=5))),
        Reading(HistoryFilter(until=start + timedelta(hours=5)), limit=7),
    ):
        for table in ("events", "requests"):
            found = postgres.table(table, reading)
            assert found.schema == sqlite.table(table, reading).schema
            new = frame_of(found)
            assert differences(new, frame_of(sqlite.table(table, reading))) == [], reading
            assert postgres.count(table, reading) == len(new) > 0
            count, batches = postgres.read(table, reading)
            assert count == len(new) and differences(frame_of(batches.read_all()), new) == []
    assert len(on_postgres.events(failed=True, flatten=True)) == len(on_sqlite.events(failed=True))
    on_postgres.close()
    on_sqlite.close()
