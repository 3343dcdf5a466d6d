"""Frame values: one test of a gap, one flattening of payloads into paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hooklab.store.values import flatten_paths, is_missing, json_text


@pytest.mark.parametrize("gap", [None, float("nan"), np.nan, pd.NA, pd.NaT])
def test_every_kind_of_gap_is_missing(gap: object) -> None:
    assert is_missing(gap)


@pytest.mark.parametrize("value", [0, 0.0, "", [], {}, False, "NaN", pd.Timestamp(0)])
def test_values_that_look_empty_are_not_missing(value: object) -> None:
    assert not is_missing(value)


def test_a_frames_gaps_are_missing_whatever_the_storage() -> None:
    frame = pd.DataFrame({"text": pd.array(["a", None], dtype="string"), "n": [1.0, None]})
    assert [is_missing(v) for v in frame["text"]] == [False, True]
    assert [is_missing(v) for v in frame["n"]] == [False, True]


def test_payloads_flatten_to_dotted_paths_with_lists_and_empty_objects_kept_whole() -> None:
    payload = {"body": {"model": "m1", "tags": ["a"], "meta": {}}, "n": 1}
    assert dict(flatten_paths(payload, "payload")) == {
        "payload.body.model": "m1",
        "payload.body.tags": ["a"],
        "payload.body.meta": {},
        "payload.n": 1,
    }


def test_json_text_is_compact_unicode_and_never_fails() -> None:
    assert json_text({"a": ["é", 1]}) == '{"a":["é",1]}'
    assert json_text({"when": pd.Timestamp(0)}) == '{"when":"1970-01-01 00:00:00"}'
