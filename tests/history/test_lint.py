"""The compatibility check and template lint of SPEC 9, and fields missing from requests."""

from __future__ import annotations

import json

from corpus_support import github_deliveries

from hooklab.core.examples import DYNAMIC_TEMPLATE as SEED
from hooklab.core.examples import STATIC_TEMPLATE
from hooklab.core.pipeline import render_events
from hooklab.core.request import HookRequest
from hooklab.history.lint import (
    Finding,
    check_lines,
    check_template,
    missing_fields,
    missing_from_all,
    referenced_fields,
)
from hooklab.workspace import Workspace


def messages(template: str) -> list[str]:
    return [str(finding) for finding in check_template(template)]


def problems(template: str) -> list[Finding]:
    return [finding for finding in check_template(template) if finding.is_problem]


def test_the_seed_templates_pass_with_notes_only() -> None:
    assert problems(SEED) == [] and problems(STATIC_TEMPLATE) == []
    assert check_template(STATIC_TEMPLATE) == []
    assert [f.line for f in check_template(SEED)] == [4, 5]
    assert check_lines(check_template(SEED))[0] == "compatible with Prefect Cloud; 2 notes"


def test_request_text_inside_quotes_is_a_note_naming_what_breaks_it_and_the_fix() -> None:
    template = """{
  "event": "shop.order.{{ body.order_id }}",
  "resource": {"prefect.resource.id": "{{ headers['X-Shop'] }}", "kind": "{{ method }}"}
}"""
    [order, shop] = check_template(template)
    assert (order.level, order.line, shop.line) == ("note", 2, 3)
    assert str(order).startswith('note: line 2: "shop.order.{{ body.order_id }}" writes')
    assert "a quote, a backslash or a line break" in order.message
    assert order.message.endswith('write {{ ("shop.order." ~ body.order_id)|tojson }}')
    assert shop.message.endswith("""write {{ headers['X-Shop']|string|tojson }}""")


def test_the_suggested_fix_renders_what_the_quoted_text_did_and_survives_what_broke_it() -> None:
    template = (
        '{"event": "shop.order.{{ body.order_id }}", "resource": {"prefect.resource.id": "x"}}'
    )
    [note] = check_template(template)
    fixed = template.replace(
        '"shop.order.{{ body.order_id }}"', note.message.rsplit("write ", 1)[1]
    )
    assert check_template(fixed) == []
    hook = Workspace(":memory:").create_webhook("shop", fixed)
    for value in ["A-1", '"', "\\", "\n", '\\"\n']:
        outcome = render_events(hook, HookRequest.fake("POST", json={"order_id": value}))
        assert outcome.event is not None and outcome.event.event == f"shop.order.{value}"


def test_text_that_cannot_hold_a_quote_is_no_note() -> None:
    template = (
        '{"event": "e.{{ body.n|int }}.{{ body.s|urlencode }}.{{ method }}", '
        '"resource": {"prefect.resource.id": "x.{{ body.items|length }}"}}'
    )
    assert check_template(template) == []


def test_query_is_flagged_as_an_extension_with_its_line() -> None:
    template = '{\n "event": "{{ query.kind }}",\n "resource": {"prefect.resource.id": "x"}\n}'
    [finding] = problems(template)
    assert finding.extension and finding.line == 2
    assert "query" in finding.message and "Prefect Cloud" in finding.message


def test_bare_body_is_a_python_repr_not_json() -> None:
    template = '{"event": "e", "resource": {"prefect.resource.id": "x"}, "payload": {{ body }}}'
    [finding] = check_template(template)
    assert "Python repr" in finding.message and "{{ body|tojson }}" in finding.message
    assert not finding.extension


def test_tojson_inside_quotes_is_flagged() -> None:
    template = '{\n"event": "e",\n"resource": {"prefect.resource.id": "{{ body.id|tojson }}"}\n}'
    [finding] = check_template(template)
    assert finding.line == 3 and "inside quotes" in finding.message


def test_tojson_outside_quotes_is_fine() -> None:
    template = '{"event": "e", "resource": {"prefect.resource.id": {{ body.id|tojson }}}}'
    assert check_template(template) == []


def test_tojson_after_a_spaced_bar_is_tojson_too() -> None:
    """The README's form for a label with a prefix, `{{ (...) | tojson }}`, is fine unquoted,
    and quoted it is the mistake it is without the spaces."""
    label = '{{ ("product.models." ~ body.model) | tojson }}'
    template = '{"event": "e", "resource": {"prefect.resource.id": %s}}'
    assert check_template(template % label) == []
    [finding] = check_template(template % f'"{label}"')
    assert "inside quotes" in finding.message


def test_unquoted_labels_are_flagged_expressions_and_literals() -> None:
    template = """{
  "event": "e",
  "resource": {"prefect.resource.id": "x", "count": {{ body.count }}},
  "related": [{"prefect.resource.id": "y", "prefect.resource.role": "r", "size": 5}],
  "payload": {"count": {{ body.count }}, "flag": true}
}"""
    found = check_template(template)
    assert [(f.line, "count" in f.message or "size" in f.message) for f in found] == [
        (3, True),
        (4, True),
    ]
    assert all("labels must be strings" in f.message for f in found)


def test_undefined_variable_renders_empty_and_is_named() -> None:
    [finding] = check_template('{"event": "{{ evnt }}", "resource": {"prefect.resource.id": "x"}}')
    assert "'evnt' is not defined" in finding.message


def test_a_syntax_error_is_one_error_finding_with_its_line() -> None:
    [finding] = check_template('{\n"event": "{{ body.x "\n}')
    assert finding.level == "error" and finding.line == 2


def test_findings_print_as_one_line() -> None:
    finding = Finding("warning", 4, "something", extension=True)
    assert str(finding) == "warning: line 4: something [hooklab extension]"


def test_referenced_fields_cover_attributes_items_and_headers() -> None:
    template = (
        '{"event": "{{ headers["X-GitHub-Event"] }}", "resource": {"prefect.resource.id": '
        '"{{ body.repository.full_name }}-{{ body["sender"].login }}-{{ body.items[0] }}"}}'
    )
    assert referenced_fields(template) == [
        ("headers", ("X-GitHub-Event",)),
        ("body", ("repository", "full_name")),
        ("body", ("sender", "login")),
        ("body", ("items", 0)),
    ]


def test_missing_fields_names_the_requests_that_lack_them() -> None:
    complete = HookRequest.fake(method="POST", form={"model": "m1", "friendly_name": "M1"})
    partial = HookRequest.fake(method="POST", form={"model": "m2"})
    broken = HookRequest.fake(method="POST", headers={"Content-Type": "application/json"}, body="{")
    frame = missing_fields(SEED, [complete, partial, broken])
    assert frame[["request_id", "field"]].values.tolist() == [
        [partial.id, "body.friendly_name"],
        [broken.id, "body"],
    ]
    assert "Invalid JSON body" in frame["error"].iloc[1]


def test_header_lookups_ignore_case() -> None:
    request = HookRequest.fake(method="POST", headers={"x-github-event": "push"}, json={})
    template = (
        '{"event": "{{ headers["X-GitHub-Event"] }}", "resource": {"prefect.resource.id": "x"}}'
    )
    assert missing_fields(template, [request]).empty


def test_missing_fields_on_the_github_corpus() -> None:
    requests = [
        HookRequest.fake(
            method="POST",
            headers={"X-GitHub-Event": path.parent.name},
            json=json.loads(path.read_text()),
        )
        for path in github_deliveries()
    ]
    template = (
        '{"event": "github.{{ headers["X-GitHub-Event"] }}", "resource": '
        '{"prefect.resource.id": "github.repo.{{ body.repository.full_name }}"}}'
    )
    frame = missing_fields(template, requests)
    missing = set(frame["request_id"])
    # Events about a repository carry it; organisation-level ones do not.
    by_event = {r.id: r.all_headers["X-GitHub-Event"] for r in requests}
    assert "push" not in {by_event[i] for i in missing}
    assert {"organization", "membership"} <= {by_event[i] for i in missing}
    assert set(frame["field"]) == {"body.repository.full_name"}


def test_a_template_nested_too_deeply_is_one_error_finding_with_its_line() -> None:
    deep = '{"event": "x",\n "n": {{ ' + "[" * 5000 + "]" * 5000 + " }}}"
    [finding] = check_template(deep)
    assert (finding.level, finding.line) == ("error", 2)
    assert finding.message.startswith("Nested too deeply")
    assert referenced_fields(deep) == []


def test_fields_no_request_has_are_named_with_the_closest_one_they_do_have() -> None:
    template = '{"event": "{{ body.orderId }}.{{ body.kind }}.{{ body.gone }}"}'
    requests = [
        HookRequest.fake(method="POST", json={"order_id": 1, "kind": "a"}),
        HookRequest.fake(method="POST", json={"order_id": 2}),
    ]
    found = missing_from_all(template, requests)
    assert found == {"body.orderId": "body.order_id", "body.gone": None}
    assert missing_from_all(template, []) == {}


def test_an_unquoted_label_is_fixed_with_tojson_not_with_quotes() -> None:
    template = '{"event": "e", "resource": {"prefect.resource.id": "x", "v": {{ body.version }}}}'
    [finding] = check_template(template)
    assert finding.message.endswith("write {{ body.version|string|tojson }}")
    assert '"{{ body.version }}"' not in finding.message  # the pattern the note calls fragile


ONE_LINE = (
    '{"event": "shop.order.{{ body.order_id }}", '
    '"resource": {"prefect.resource.id": "shop.order.{{ body.order_id }}"}}'
)


def test_a_note_said_twice_on_a_line_is_said_once_and_the_summary_counts_it() -> None:
    from hooklab.history.lint import check_lines

    [note] = check_template(ONE_LINE)
    assert note.message.endswith(
        "(2 times on this line: at event and at resource.prefect.resource.id)"
    )
    lines = check_lines(check_template(ONE_LINE))
    assert lines[0] == "compatible with Prefect Cloud; 1 note"
    assert len(lines) == 2 and "no common mistakes" not in " ".join(lines)
    clean = '{"event": "e", "resource": {"prefect.resource.id": "x"}}'
    assert check_lines(check_template(clean)) == [
        "compatible with Prefect Cloud; no common mistakes found"
    ]
