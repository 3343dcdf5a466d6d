"""A forwarding failure is logged once per episode, reminded at most every ten minutes while
it lasts, and its end is one line of good news."""

from __future__ import annotations

from hooklab.prefect.episodes import FailureLog

URL = "http://127.0.0.1:4200/api"


def test_an_outage_is_one_line_then_a_reminder_each_ten_minutes_then_one_line_at_its_end() -> None:
    now = [0.0]
    warned: list[str] = []
    told: list[str] = []
    log = FailureLog(
        warn=warned.append, inform=told.append, pending=lambda _url: 42, clock=lambda: now[0]
    )
    for _ in range(120):  # an hour of tries, one each 30 s
        log.failed(URL, "cannot reach Prefect")
        now[0] += 30
    assert warned[0] == (
        f"hooklab: forwarding to {URL} failed, will retry (said again every 10 min while it "
        "fails): cannot reach Prefect"
    )
    assert warned[1] == (
        f"hooklab: forwarding to {URL} still failing after 10 min (21 attempts, 42 events "
        "pending): cannot reach Prefect"
    )
    assert len(warned) == 6 and told == []
    log.store_back(URL)  # the store came back; Prefect did not
    assert told == [
        f"forwarding to {URL}: the store answers again; Prefect is still failing, as said above"
    ]
    log.resumed(URL, "Prefect takes events again, after 120 failed attempts")
    assert told[-1] == (
        f"forwarding to {URL} resumed: Prefect takes events again, after 120 failed attempts, "
        "over 1 h 0 min"
    )
    log.resumed(URL, "again")  # no episode: nothing to say
    log.failed(URL, "refused")  # a new episode is told at once
    assert len(told) == 2 and len(warned) == 7 and "failed, will retry" in warned[-1]
