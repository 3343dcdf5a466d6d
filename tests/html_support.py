"""Reading an HTML view as a browser would: what became markup, and what text it shows."""

from __future__ import annotations

from html.parser import HTMLParser

from hooklab.core.request import HookRequest

# Text a sender or a template author controls, as an attacker would write it.
SCRIPT = "<script>alert(1)</script>"
HOSTILE = f"{SCRIPT} & \"double\" 'single'"
# The event's name and resource come from the body; so do the payload and a bad `occurred`.
HOSTILE_TEMPLATE = """{
  "event": {{ body.name|tojson }},
  "resource": {"prefect.resource.id": "r.{{ body.name }}"},
  "payload": {"note": {{ body.note|tojson }}}
  {%- if body.when %}, "occurred": {{ body.when|tojson }}{% endif %}
}"""


def hostile_post(**fields: str) -> HookRequest:
    """A request whose path, query, client, header and body all hold hostile text."""
    return HookRequest.fake(
        method="POST",
        path=f"/hooks/{SCRIPT}",
        query=f"q={SCRIPT}",
        headers={"X-Note": HOSTILE},
        json={"name": SCRIPT, "note": HOSTILE, **fields},
        client=SCRIPT,
    )


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def shown_text(html: str) -> str:
    """The text `html` shows, after checking that no hostile text became an element or an
    attribute (hooklab's views put only fixed `style` attributes in their markup)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    assert "script" not in reader.tags, html
    assert {name for name, _value in reader.attributes} <= {"style"}, reader.attributes
    assert not any("alert" in (value or "") for _name, value in reader.attributes), html
    return "".join(reader.text)
