"""The raw captured request, its case-insensitive headers, and the template context."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlencode

from hooklab.core.credentials import HIDDEN_FROM_TEMPLATES, NEVER_STORED_HEADERS

HIDDEN_HEADERS = HIDDEN_FROM_TEMPLATES


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view of request headers.

    >>> h = Headers([("Content-Type", "text/plain")])
    >>> h["content-type"] == h["CONTENT-TYPE"] == "text/plain"
    True

    Repeated headers are joined with ", ", as HTTP allows. Iteration yields the names as the
    sender spelled them, in the order received.
    """

    __slots__ = ("_items",)

    def __init__(
        self, pairs: Iterable[tuple[str, str]] = (), *, hidden: frozenset[str] = frozenset()
    ) -> None:
        pairs = pairs if isinstance(pairs, tuple) else tuple(pairs)
        # Most requests repeat no header name: map all names in one pass (this runs for every
        # request received), and join values only when a name does repeat.
        items: dict[str, tuple[str, str]] = {pair[0].lower(): pair for pair in pairs}
        if len(items) != len(pairs):
            items = {}
            for name, value in pairs:
                key = name.lower()
                earlier = items.get(key)
                if earlier is not None:
                    name, value = earlier[0], f"{earlier[1]}, {value}"
                items[key] = (name, value)
        for key in hidden:
            items.pop(key, None)
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, default: Any = None) -> Any:  # one lookup, without try/except
        item = self._items.get(name.lower()) if isinstance(name, str) else None
        return default if item is None else item[1]

    def __repr__(self) -> str:
        return f"Headers({self.to_dict()!r})"

    def to_dict(self) -> dict[str, str]:
        """The headers as a plain dict, keyed by the names as sent."""
        return dict(self._items.values())

    def stored(self) -> dict[str, str]:
        """The headers as a plain dict, as hooklab keeps them: without the credentials it
        never stores (`hooklab.core.credentials`)."""
        items = self._items
        if NEVER_STORED_HEADERS.isdisjoint(items):
            return dict(items.values())
        return {pair[0]: pair[1] for key, pair in items.items() if key not in NEVER_STORED_HEADERS}


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type value, lowercased, without parameters such as charset."""
    if not content_type:
        return ""
    # A sender sends the same few values again and again: each is worked out once.
    found = _media_types.get(content_type)
    if found is None:
        found = content_type.split(";", 1)[0].strip().lower()
        if len(_media_types) < 256:
            _media_types[content_type] = found
    return found


_media_types: dict[str, str] = {}


def is_json_type(mtype: str) -> bool:
    return mtype == "application/json" or mtype.endswith("+json")


@dataclass(frozen=True)
class HookRequest:
    """One HTTP request exactly as it arrived at a webhook, before any interpretation.

    `headers` keeps the order received; the credentials hooklab never stores (`Authorization`,
    `Proxy-Authorization`, `Cookie`, `X-Api-Key`) are dropped before a request is stored (see
    `without_secrets` and `hooklab.core.credentials`).
    """

    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    received: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    client: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def fake(
        cls,
        method: str = "GET",
        path: str = "/",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        *,
        query: str | Mapping[str, str] = "",
        received: datetime | None = None,
        client: str = "127.0.0.1",
        id: str | None = None,
    ) -> HookRequest:
        """Build a request for tests and notebooks without a server.

        >>> HookRequest.fake(method="POST", form={"model": "m1"}).body
        b'model=m1'

        `json` and `form` set a matching Content-Type unless `headers` already has one.
        """
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or [])
        have_type = any(name.lower() == "content-type" for name, _ in pairs)
        data: bytes
        if json is not None:
            data = _json_dumps(json).encode()
            default_type = "application/json"
        elif form is not None:
            data = urlencode(dict(form)).encode()
            default_type = "application/x-www-form-urlencoded"
        else:
            data = body.encode() if isinstance(body, str) else (body or b"")
            default_type = ""
        if default_type and not have_type:
            pairs.append(("Content-Type", default_type))
        if data and not any(name.lower() == "content-length" for name, _ in pairs):
            pairs.append(("Content-Length", str(len(data))))
        query_string = query if isinstance(query, str) else urlencode(dict(query))
        return cls(
            method=method.upper(),
            path=path,
            query=query_string,
            headers=tuple((str(k), str(v)) for k, v in pairs),
            body=data,
            received=received or datetime.now(timezone.utc),
            client=client,
            id=id or str(uuid.uuid4()),
        )

    @property
    def all_headers(self) -> Headers:
        return Headers(self.headers)

    @property
    def visible_headers(self) -> Headers:
        """The headers a template, a payload or a person may see: all but Authorization."""
        return Headers(self.headers, hidden=HIDDEN_HEADERS)

    @property
    def content_type(self) -> str:
        return media_type(self.all_headers.get("content-type"))

    def without_secrets(self) -> HookRequest:
        """This request as it is stored: without the headers that carry credentials by name
        (`hooklab.core.credentials.NEVER_STORED_HEADERS`)."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in NEVER_STORED_HEADERS)
        if len(kept) == len(self.headers):
            return self
        return HookRequest(
            self.method, self.path, self.query, kept, self.body, self.received, self.client, self.id
        )

    def body_text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_error(exc: json.JSONDecodeError) -> str:
    """Where JSON text breaks, in one line: the reason, then its line, column and character.

    >>> try:
    ...     json.loads('{"a": "x' + chr(10) + 'y"}')  # a raw newline inside a string
    ... except json.JSONDecodeError as exc:
    ...     print(json_error(exc))
    Invalid control character at line 1 column 9 (char 8)
    """
    # Some of json's reasons end in "at" already ("Invalid control character at").
    reason = exc.msg.removesuffix(" at")
    return f"{reason} at line {exc.lineno} column {exc.colno} (char {exc.pos})"


class JsonTextError(ValueError):
    """JSON text that cannot be read, said in one line: where its syntax breaks, or why
    Python's reader gives up on it (nesting too deep, a number too long)."""


def read_json(text: str | bytes, loads: Callable[[Any], Any] = json.loads) -> Any:
    """`loads(text)` (json.loads by default), its errors in one line of their own words.

    >>> try:
    ...     read_json("[" * 100_000)
    ... except JsonTextError as exc:
    ...     print(exc)
    nested too deeply (more brackets inside one another than can be read)
    """
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        raise JsonTextError(json_error(exc)) from None
    except RecursionError:
        raise JsonTextError(NESTED_TOO_DEEPLY) from None
    except ValueError as exc:
        if "set_int_max_str_digits" in str(exc):
            raise JsonTextError(too_many_digits()) from None
        raise


NESTED_TOO_DEEPLY = "nested too deeply (more brackets inside one another than can be read)"


def too_many_digits() -> str:
    """What a number too long for Python to read or write as text is, in words."""
    return f"a number has more than {sys.get_int_max_str_digits()} digits, more than can be read"


class BodyError(ValueError):
    """The body cannot be read as its Content-Type says it should be."""


def parse_body(
    content_type: str, body: bytes, quick_json: Callable[[bytes], Any] | None = None
) -> Any:
    """Parse a body the way Prefect Cloud does for templates (SPEC 3).

    JSON types must parse; form bodies become a flat dict (the last repeated key wins); anything
    else is tried as JSON and falls back to text. An empty body is `""` whatever its type, so a
    bodiless GET that carries a JSON Content-Type still suits a static template.

    `quick_json`: a reader of a JSON body's bytes that gives what this function gives, or
    raises ValueError when it cannot tell (the body is then read here, for its value or error).
    """
    if is_json_type(content_type):
        if not body:
            return ""
        if quick_json is not None:
            try:
                return quick_json(body)
            except ValueError:
                pass
        text = _decode_strict(body)
        try:
            return read_json(text)
        except JsonTextError as exc:
            raise BodyError(f"Invalid JSON body: {exc}") from None
    if content_type == "application/x-www-form-urlencoded":
        return parse_form(_decode_strict(body))
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text  # read as text, as Prefect reads what is not JSON


def parse_form(text: str) -> dict[str, str]:
    """A form body as a flat dict: exactly `dict(parse_qsl(text, keep_blank_values=True))`.

    parse_qsl splits the fields, turns `+` into a space and decodes the %-escapes of each name
    and value (as UTF-8, bad bytes replaced). That is done here directly, at a fraction of the
    cost, as it runs for every form request: when no escape stands for a separator (`&` or
    `=`), the escapes of the whole body are decoded at once, before it is split. (A byte that
    does not decode is replaced alike either way: a separator is ASCII, and ends it.)
    """
    form = {}
    if "%" not in text or not ("%26" in text or "%3D" in text or "%3d" in text):
        if "%" in text:
            text = _unquote(text.replace("+", " "))
        elif "+" in text:
            text = text.replace("+", " ")
        for field_ in text.split("&"):
            if field_:
                name, _, value = field_.partition("=")
                form[name] = value
        return form
    for field_ in text.split("&"):
        if field_:
            name, _, value = field_.partition("=")
            name = _unquote(name.replace("+", " "))
            form[name] = _unquote(value.replace("+", " "))
    return form


def _unquote(text: str) -> str:
    # Exactly `unquote(text)`, which decodes each run of ASCII characters as bytes and keeps
    # the other characters as they are: ASCII text, as form bodies nearly always are, is one run.
    if text.isascii():
        # Its escapes decoded at C speed: %XX becomes \xXX for the unicode_escape codec (its
        # own backslashes doubled first), which gives each escape's byte as one character;
        # latin-1 turns those back into the bytes, and UTF-8 decodes them as unquote does. A
        # `%` without two hex digits after it is not an escape: unquote keeps it, and the codec
        # refuses it, so that text takes unquote's own way.
        try:
            escaped = text.replace("\\", "\\\\").replace("%", "\\x")
            raw = escaped.encode("ascii").decode("unicode_escape").encode("latin-1")
        except UnicodeDecodeError:
            return unquote_to_bytes(text).decode("utf-8", "replace")
        return raw.decode("utf-8", "replace")
    return unquote(text)


def _decode_strict(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(
            f"Request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at position {exc.start}"
        ) from None


def query_mapping(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


class TemplateContext(NamedTuple):
    """What a template sees: `method`, `headers`, `body`, and hooklab's extension `query`.
    (A named tuple: one is made for every request, and it is quicker to make than a dataclass.)"""

    method: str
    headers: Headers
    body: Any
    query: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "headers": self.headers,
            "body": self.body,
            "query": self.query,
        }


def template_variables(
    request: HookRequest, quick_json: Callable[[bytes], Any] | None = None
) -> dict[str, Any]:
    """The variables a template is rendered with: `method`, `headers`, `body` and `query`.

    Raises `BodyError` when a JSON or form body cannot be read. `quick_json`: see `parse_body`.
    """
    headers = request.visible_headers  # built once: Content-Type is never hidden
    return {
        "method": request.method.upper(),
        "headers": headers,
        "body": parse_body(media_type(headers.get("content-type")), request.body, quick_json),
        "query": query_mapping(request.query) if request.query else {},
    }


def template_context(request: HookRequest) -> TemplateContext:
    """The template context; raises `BodyError` when a JSON or form body cannot be read."""
    return TemplateContext(**template_variables(request))
