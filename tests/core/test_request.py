"""HookRequest, its headers, body parsing and the template context (SPEC 3)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from hooklab.core.request import BodyError, Headers, HookRequest, parse_body, template_context


def test_fake_with_json_sets_content_type_and_length() -> None:
    request = HookRequest.fake(method="post", json={"model": "m1", "n": [1, 2]})
    assert request.method == "POST"
    assert json.loads(request.body) == {"model": "m1", "n": [1, 2]}
    assert request.all_headers["content-type"] == "application/json"
    assert request.all_headers["Content-Length"] == str(len(request.body))


def test_fake_with_form_urlencodes_the_fields() -> None:
    request = HookRequest.fake(method="POST", form={"model": "m1", "friendly name": "A & B"})
    assert request.body == b"model=m1&friendly+name=A+%26+B"
    assert request.content_type == "application/x-www-form-urlencoded"


def test_fake_keeps_a_content_type_the_caller_gave() -> None:
    request = HookRequest.fake(json={"a": 1}, headers={"Content-Type": "application/vnd.x+json"})
    assert [v for k, v in request.headers if k.lower() == "content-type"] == [
        "application/vnd.x+json"
    ]


def test_fake_defaults_to_a_bodiless_get() -> None:
    request = HookRequest.fake()
    assert (request.method, request.path, request.query, request.body) == ("GET", "/", "", b"")
    assert request.headers == ()
    assert request.received.tzinfo is not None
    assert request.client == "127.0.0.1"


def test_fake_raw_body_text_and_query_mapping() -> None:
    request = HookRequest.fake(method="PUT", body="hello", query={"a": "1", "b": "x y"})
    assert request.body == b"hello"
    assert request.query == "a=1&b=x+y"
    assert request.content_type == ""


def test_headers_keep_the_order_received_and_the_senders_spelling() -> None:
    request = HookRequest.fake(headers=[("X-B", "2"), ("x-a", "1"), ("Content-Type", "text/plain")])
    assert list(request.all_headers) == ["X-B", "x-a", "Content-Type"]
    assert request.headers[0] == ("X-B", "2")


def test_headers_are_case_insensitive() -> None:
    headers = Headers([("Content-Length", "228")])
    assert headers["Content-Length"] == headers["content-length"] == headers["CoNtEnt-LeNgTh"]
    assert "CONTENT-LENGTH" in headers
    assert headers.get("missing") is None
    assert len(headers) == 1


def test_repeated_headers_are_joined_as_http_allows() -> None:
    headers = Headers([("Accept", "a"), ("accept", "b")])
    assert headers["ACCEPT"] == "a, b"
    assert headers.to_dict() == {"Accept": "a, b"}


def test_authorization_is_hidden_from_visible_headers_and_dropped_when_stored() -> None:
    request = HookRequest.fake(headers={"Authorization": "Bearer s3cret", "X-Other": "1"})
    assert "authorization" not in request.visible_headers
    assert "s3cret" not in repr(request.without_secrets())
    assert request.without_secrets().headers == (("X-Other", "1"),)
    assert request.all_headers["authorization"] == "Bearer s3cret"


def test_without_secrets_keeps_everything_else() -> None:
    moment = datetime(2024, 1, 2, tzinfo=timezone.utc)
    request = HookRequest.fake(
        method="POST", path="/hooks/x", body="b", received=moment, id="r1",
        headers={"authorization": "k", "X": "y"}, query="q=1", client="10.0.0.1",
    )  # fmt: skip
    clean = request.without_secrets()
    assert (clean.method, clean.path, clean.query, clean.body) == ("POST", "/hooks/x", "q=1", b"b")
    assert (clean.received, clean.id, clean.client) == (moment, "r1", "10.0.0.1")


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}),
        ("application/json", b"[1, 2]", [1, 2]),
        ("application/cloudevents+json", b'{"id": "1"}', {"id": "1"}),
        ("application/x-www-form-urlencoded", b"a=1&b=2&a=3&c=", {"a": "3", "b": "2", "c": ""}),
        ("text/plain", b'{"a": 1}', {"a": 1}),
        ("text/plain", b"just words", "just words"),
        ("", b"42", 42),
        ("", b"", ""),
        ("application/json", b"", ""),
        ("application/x-www-form-urlencoded", b"", {}),
        ("application/octet-stream", b"\xff\xfeok", "\ufffd\ufffdok"),
    ],
)
def test_parse_body_by_media_type(content_type: str, body: bytes, expected: object) -> None:
    assert parse_body(content_type, body) == expected


def test_content_type_parameters_are_ignored() -> None:
    request = HookRequest.fake(
        method="POST", body='{"a": 1}', headers={"Content-Type": "Application/JSON; charset=utf-8"}
    )
    assert template_context(request).body == {"a": 1}


def test_malformed_json_names_the_position() -> None:
    with pytest.raises(BodyError, match=r"Invalid JSON body: .* line 2 column 5 \(char 10\)"):
        parse_body("application/json", b'{"a":\n    oops}')


def test_invalid_utf8_in_a_json_body_names_the_byte() -> None:
    with pytest.raises(BodyError, match="not valid UTF-8: byte 0xff at position 6"):
        parse_body("application/json", b'{"a": \xff}')


def test_form_body_allows_attribute_and_item_access_in_the_context() -> None:
    request = HookRequest.fake(method="POST", form={"model": "m1", "friendly-name": "M One"})
    context = template_context(request)
    assert context.body["friendly-name"] == "M One"
    assert context.as_dict()["body"]["model"] == "m1"


def test_template_context_has_method_headers_body_and_query() -> None:
    request = HookRequest.fake(
        method="patch", json={"x": 1}, query="a=1&a=2&b=", headers={"Authorization": "Bearer k"}
    )
    context = template_context(request).as_dict()
    assert set(context) == {"method", "headers", "body", "query"}
    assert context["method"] == "PATCH"
    assert context["query"] == {"a": "2", "b": ""}
    assert "Authorization" not in context["headers"]


def test_form_parsing_is_exactly_parse_qsl() -> None:
    import random
    from urllib.parse import parse_qsl

    from hooklab.core.request import parse_form

    alphabet = "ab=&+ %2x\u00e9"
    rng = random.Random(7)
    samples = ["", "&", "=", "a", "a=", "=b", "a=b=c", "a=1&a=2", "a+b=c+d", "x=%41+%zz"]
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)
    ]
    for text in samples:
        assert parse_form(text) == dict(parse_qsl(text, keep_blank_values=True)), text


def test_headers_get_is_case_insensitive_with_a_default() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("X-A", "1"), ("x-a", "2")])
    assert headers.get("CONTENT-TYPE") == "text/plain"
    assert headers.get("x-A") == "1, 2"
    assert headers.get("missing") is None and headers.get("missing", "d") == "d"
    assert headers.get(5) is None  # type: ignore[arg-type]
