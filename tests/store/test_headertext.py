"""The content type of each stored request, found in its stored header text: the same media
type that `Headers` gives, on every kind of header list a sender can send."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

import hooklab
from hooklab import HookRequest
from hooklab.core.examples import DYNAMIC_TEMPLATE
from hooklab.core.request import Headers, media_type
from hooklab.store.headertext import content_types

NAMES = ["Content-Type", "content-type", "CONTENT-TYPE", "Content-Typ", "X-Content-Type",
         "content-type ", "Accept", "X-Content-Type-Options"]  # fmt: skip
VALUES = ["application/json", "text/plain; charset=utf-8", ' a"b ', "x\\y", "Ünï/CÖDÉ", "", ";",
          " Text/HTML ;q=1", '["content-type", "', 'multipart/form-data; boundary="x"',
          "application/x-www-form-urlencoded"]  # fmt: skip


def expected(texts: list[str | None]) -> list[str]:
    """What the request itself gives: its headers' Content-Type, as `media_type` reads it."""
    return [
        media_type(Headers([(k, v) for k, v in json.loads(text)]).get("content-type"))
        if text is not None
        else ""
        for text in texts
    ]


def stored(pairs: list[tuple[str, str]]) -> str:
    return json.dumps([list(pair) for pair in pairs])  # as the stores write them


@pytest.mark.parametrize(
    ("pairs", "media"),
    [
        ([("Content-Type", "application/json")], "application/json"),
        ([("User-Agent", "x"), ("content-TYPE", " Text/Plain ; charset=utf-8")], "text/plain"),
        ([("X-Content-Type-Options", "nosniff"), ("Accept", "a/b")], ""),
        ([("Content-Type", 'a/"quoted"')], 'a/"quoted"'),  # an escape: read by json
        ([("Content-Type", "a/b"), ("content-type", "c/d")], "a/b, c/d"),  # sent twice: joined
        ([], ""),
    ],
)
def test_each_kind_of_header_list_gives_the_requests_media_type(
    pairs: list[tuple[str, str]], media: str
) -> None:
    texts = pa.array(["[]", stored(pairs), '[["a", "b"]]'])
    assert content_types(texts).to_pylist() == ["", media, ""]


def test_thousands_of_random_header_lists_give_what_headers_gives() -> None:
    chance = random.Random(7)
    texts: list[str | None] = []
    for _ in range(4000):
        pairs = [(chance.choice(NAMES), chance.choice(VALUES)) for _ in range(chance.randint(0, 4))]
        texts.append(stored(pairs) if chance.random() > 0.05 else None)
    column = pa.array(texts, pa.string())
    # Batches read after the typing row start part way into their buffers: slices too.
    for part, values in ((column, texts), (column.slice(1), texts[1:]),
                         (column.slice(5, 700), texts[5:705])):  # fmt: skip
        assert content_types(part).to_pylist() == expected(values)
    assert content_types(column.cast(pa.large_string())).to_pylist() == expected(texts)


def test_a_slice_of_header_texts_without_gaps_gives_its_own_rows_media_types() -> None:
    texts: list[str | None] = [
        stored([("Accept", "*/*")]),
        *(stored([("Content-Type", v)]) for v in VALUES),
    ]
    for column in (pa.array(texts), pa.array(texts, pa.large_string())):
        for start in (1, 2, 5):
            part = column.slice(start)
            assert content_types(part).to_pylist() == expected(texts[start:])


def test_a_content_type_python_lowercases_into_more_letters_is_read_as_the_request_gives_it(
    tmp_path: Path,
) -> None:
    kinds = ["İmage/X", "ΑΣ/ΣΑ; q=1", "text/plain", " Ünï/CÖDÉ "]
    ws = hooklab.Workspace(tmp_path / "hooklab.db")
    hook = ws.create_webhook("models", DYNAMIC_TEMPLATE)
    sent = [HookRequest.fake(method="POST", headers={"Content-Type": k}, body="x") for k in kinds]
    for request in sent:
        ws.receive(hook.slug, request)
    read = ws.requests_arrow()
    assert read["content_type"].to_pylist() == [
        media_type(Headers(request.headers).get("content-type")) for request in sent
    ]
    ws.close()
