"""The benchmarks' workloads: a template and the requests a sender would make for it.

Each shape stands for templates people write: the seed (Prefect's docs example, lookups only),
`default` over percent-escaped form bodies, a filter chain over form bodies, nested lookups and
`tojson` over JSON bodies, `if` blocks with number and humanize filters, a partial Prefect event
passed through whole, and CloudEvents in structured mode, binary mode and in batches. Then the
bodies of real senders, as big as they send them, through the template a user writes for each:
a GitHub `push` delivery (7 KB, from tests/corpus/github), a Stripe `payment_intent.succeeded`
event and a Slack Events API message callback (from tests/corpus/stripe and tests/corpus/slack).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from hooklab.core.examples import DYNAMIC_TEMPLATE
from hooklab.core.request import HookRequest

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SENDER_HEADERS = {"Host": "127.0.0.1:8765", "User-Agent": "curl/8.5.0", "Accept": "*/*"}


@dataclass(frozen=True)
class Workload:
    """A template and a body pattern; `{i}` in the pattern is the request's number."""

    name: str
    template: str
    content_type: str
    body_pattern: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, number: int) -> str:
        return self.body_pattern.replace("{i}", str(number))

    def request(self, number: int) -> HookRequest:
        return HookRequest.fake(
            method="POST",
            path="/hooks/AERylZ_uewzpDx-8fcweHQ",
            headers={**SENDER_HEADERS, **self.headers, "Content-Type": self.content_type},
            body=self.body(number),
        )

    def parsed_by_hand(self, body: bytes) -> object:
        """What a user's own script would make of the body: parse_qsl or json.loads."""
        text = body.decode()
        return dict(parse_qsl(text)) if self.content_type == FORM else json.loads(text)


SEED = Workload(
    "seed",
    DYNAMIC_TEMPLATE,
    FORM,
    "model=recommender-{i}&friendly_name=Recommender+{i}",
)

ESCAPED_FORM_DEFAULT = Workload(
    "escaped-form-default",
    """{
  "event": "model-update",
  "resource": {
    "prefect.resource.id": "product.models.{{ body.model }}",
    "prefect.resource.name": "{{ body.friendly_name|default(body.model) }}",
    "owner": "{{ body.owner|default('nobody') }}",
    "producing-team": "{{ body.team|default('Data Science') }}"
  }
}""",
    FORM,
    "model=recommender-{i}&friendly_name=Recommender%20{i}%20%28beta%29"
    "&owner=jane.doe%40example.com&note=a+b%2Bc%26d",
)

FORM_FILTER_CHAIN = Workload(
    "form-filter-chain",
    """{
  "event": "signup.{{ body.plan|default('free')|lower }}",
  "resource": {
    "prefect.resource.id": "users.{{ body.name|default("?")|trim|lower|replace(" ", "-")|truncate(40) }}",
    "prefect.resource.name": "{{ body.name|default("?")|trim }}",
    "email": "{{ body.email|default('')|lower }}"
  }
}""",  # noqa: E501 (the filter chain reads best on one line, as people write it)
    FORM,
    "name=+Ada%20Lovelace+{i}+&plan=PRO&email=Ada.{i}%40Example.com&source=landing%2Fhero",
)

JSON_NESTED_TOJSON = Workload(
    "json-nested-tojson",
    """{
  "event": "github.{{ headers['X-GitHub-Event'] }}.{{ body.action }}",
  "resource": {
    "prefect.resource.id": "github.repo.{{ body.repository.full_name }}",
    "prefect.resource.name": "{{ body.repository.name }}",
    "owner": "{{ body.repository.owner.login }}"
  },
  "payload": {
    "sender": {{ body.sender.login|tojson }},
    "number": {{ body.pull_request.number|tojson }},
    "title": {{ body.pull_request.title|tojson }},
    "labels": {{ body.pull_request.labels|tojson }}
  }
}""",
    JSON,
    '{"action": "opened", "number": {i}, "repository": {"full_name": "acme/service-{i}", '
    '"name": "service-{i}", "owner": {"login": "acme", "id": 1}, "private": false}, '
    '"sender": {"login": "dev-{i}", "id": {i}}, "pull_request": {"number": {i}, '
    '"title": "Fix <b>bold</b> & \\"quotes\\" in #{i}", "draft": false, '
    '"labels": [{"name": "bug"}, {"name": "p{i}"}]}}',
    headers={"X-GitHub-Event": "pull_request"},
)

IF_BLOCKS_NUMBERS = Workload(
    "if-blocks-numbers",
    """{
  "event": "order.{% if body.total|float > 100 %}large{% else %}small{% endif %}",
  "resource": {
    "prefect.resource.id": "shop.order.{{ body.order.id|string|upper }}",
    "items": "{{ body.order['items']|length }}",
    "skus": "{{ body.order['items']|map(attribute='sku')|join(',') }}",
    "total": "{{ body.total|humanize_intcomma }}",
    "quantity": "{{ body.quantity|int }}"
  }{% if body.customer %},
  "related": [{"prefect.resource.id": "shop.customer.{{ body.customer.id }}",
               "prefect.resource.role": "customer"}]{% endif %}
}""",
    JSON,
    '{"order": {"id": "a-{i}", "items": [{"sku": "x{i}"}, {"sku": "y"}]}, "total": {i}.5, '
    '"quantity": "3", "customer": {"id": "c{i}", "tier": "gold"}}',
)

# A partial Prefect event that a service posts to be passed through whole, as a data platform's
# job emits one: labels on its resource, related resources, and a payload of nested data.
_PARTIAL_EVENT = {
    "event": "acme.etl.sync.completed",
    "resource": {
        "prefect.resource.id": "acme.pipeline.orders-sync-{i}",
        "prefect.resource.name": "Orders sync {i}",
        "acme.team": "data-platform",
        "acme.environment": "production",
        "acme.region": "eu-west-1",
    },
    "related": [
        {
            "prefect.resource.id": "acme.warehouse.snowflake.analytics",
            "prefect.resource.role": "destination",
            "prefect.resource.name": "Analytics warehouse",
        },
        {
            "prefect.resource.id": "acme.source.postgres.orders",
            "prefect.resource.role": "source",
        },
        {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
    ],
    "payload": {
        "run": {
            "id": "run-{i}",
            "attempt": 1,
            "started": "2026-03-14T02:00:04.118Z",
            "finished": "2026-03-14T02:07:41.902Z",
            "trigger": {"kind": "schedule", "cron": "0 2 * * *", "timezone": "Europe/Dublin"},
        },
        "rows": {"extracted": 120345, "loaded": 120301, "rejected": 44, "ratio": 0.99963},
        "tables": [
            {"name": "orders", "rows": 80211, "bytes": 51380224, "incremental": True},
            {"name": "order_items", "rows": 38902, "bytes": 20447232, "incremental": True},
            {"name": "customers", "rows": 1188, "bytes": 917504, "incremental": False},
        ],
        "warnings": [
            "44 rows rejected: column 'discount' out of range (< 0)",
            "source replica lag 12 s at start",
        ],
        "versions": {"connector": "2.14.1", "engine": "1.9.0", "schema": 37},
        "owner": {"name": "Jane Doe", "email": "jane.doe@example.com", "on_call": False},
        "notes": None,
    },
}

PASS_THROUGH = Workload(
    "pass-through",
    "{{ body|tojson }}",
    JSON,
    json.dumps(_PARTIAL_EVENT),
)

CLOUDEVENTS = "application/cloudevents+json"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
CLOUD_EVENT_TEMPLATE = "{{ body|from_cloud_event(headers) }}"

# The data of a CloudEvent as an object store's notification sends it.
_CLOUD_EVENT_DATA = {
    "bucket": "acme-landing-zone",
    "name": "exports/orders/2026/03/14/part-{i}.parquet",
    "size": "18734412",
    "contentType": "application/vnd.apache.parquet",
    "generation": "1710381604118733",
    "metageneration": "1",
    "timeCreated": "2026-03-14T02:00:04.118Z",
    "updated": "2026-03-14T02:00:04.118Z",
    "storageClass": "STANDARD",
    "md5Hash": "ZmFrZS1tZDUtaGFzaC0xMjM0NQ==",
    "crc32c": "yZRlqg==",
    "metadata": {"pipeline": "orders-sync", "run": "run-{i}", "rows": "80211"},
}
_CLOUD_EVENT_ATTRIBUTES = {
    "specversion": "1.0",
    "type": "google.cloud.storage.object.v1.finalized",
    "source": "//storage.googleapis.com/projects/_/buckets/acme-landing-zone",
    "subject": "objects/exports/orders/2026/03/14/part-{i}.parquet",
    "id": "8611283027584{i}",
    "time": "2026-03-14T02:00:04.118733Z",
    "datacontenttype": "application/json",
}

CLOUDEVENT_STRUCTURED = Workload(
    "cloudevent-structured",
    CLOUD_EVENT_TEMPLATE,
    CLOUDEVENTS,
    json.dumps({**_CLOUD_EVENT_ATTRIBUTES, "data": _CLOUD_EVENT_DATA}),
)

CLOUDEVENT_BINARY = Workload(
    "cloudevent-binary",
    CLOUD_EVENT_TEMPLATE,
    JSON,
    json.dumps(_CLOUD_EVENT_DATA),
    # (the same attributes for every request: wrk numbers only the body)
    headers={
        f"ce-{name}": value.replace("{i}", "1")
        for name, value in _CLOUD_EVENT_ATTRIBUTES.items()
        if name != "datacontenttype"
    },
)

# A batch of four CloudEvents (an extension): four events from one request.
CLOUDEVENT_BATCH = Workload(
    "cloudevent-batch",
    CLOUD_EVENT_TEMPLATE,
    CLOUDEVENTS_BATCH,
    json.dumps(
        [
            {
                **_CLOUD_EVENT_ATTRIBUTES,
                "id": f"8611283027584{{i}}-{part}",
                "subject": f"objects/exports/orders/part-{{i}}-{part}.parquet",
                "data": {**_CLOUD_EVENT_DATA, "name": f"exports/orders/part-{{i}}-{part}.parquet"},
            }
            for part in range(4)
        ]
    ),
)


def corpus_body(path: str, numbered: str, *, compact: bool = False) -> str:
    """A corpus file's body as its sender sends it, with `{i}` (the request's number) put into
    the value `numbered`, so that no two requests are the same. `compact`: the sender writes
    JSON without spaces (the file is kept indented for reading)."""
    text = (CORPUS / path).read_text()
    if compact:
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    assert text.count(numbered) == 1, f"{numbered!r} is not once in {path}"
    return text.replace(numbered, numbered[: -len("{i}")] + "{i}")


GITHUB_PUSH = Workload(
    "github-push",
    """{
  "event": "github.{{ headers['X-GitHub-Event'] }}{% if body.action %}.{{ body.action }}{% endif %}",
  "resource": {
    "prefect.resource.id": "github.repository.{{ body.repository.id }}",
    "prefect.resource.name": {{ body.repository.full_name|tojson }},
    "github.ref": {{ body.ref|default('none')|tojson }},
    "github.sender": {{ body.sender.login|default('unknown')|tojson }},
    "github.commits": "{{ body.commits|default([])|length }}"
  },
  "payload": {
    "ref": {{ body.ref|tojson }},
    "before": {{ body.before|tojson }},
    "after": {{ body.after|tojson }},
    "deleted": {{ body.deleted|default(false)|tojson }},
    "pusher": {{ body.pusher|tojson }},
    "sender": {{ body.sender|tojson }},
    "message": {{ body.head_commit.message|default('', true)|truncate(72)|tojson }},
    "compare": {{ body.compare|tojson }}
  }
}""",  # noqa: E501 (the event line reads best on one line, as people write it)
    JSON,
    # The file as published (7 KB); the number goes into the commit pushed over.
    corpus_body("github/push/payload.json", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"),
    headers={
        "User-Agent": "GitHub-Hookshot/5ef53b8",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "7b7f0c10-b3a1-11ef-8b1e-6d1f3c2a9e01",
        "X-GitHub-Hook-ID": "512340001",
        "X-GitHub-Hook-Installation-Target-ID": "186853002",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-Hub-Signature-256": "sha256=" + "5f" * 32,
    },
)

STRIPE_PAYMENT_INTENT = Workload(
    "stripe-payment-intent",
    """{
  "event": "stripe.{{ body.type }}",
  "resource": {
    "prefect.resource.id": "stripe.{{ body.data.object.object }}.{{ body.data.object.id }}",
    "stripe.livemode": "{{ body.livemode|default(false)|lower }}",
    "stripe.currency": "{{ body.data.object.currency|default('')|upper }}",
    "stripe.status": "{{ body.data.object.status }}"
  },
  "payload": {
    "stripe_event": {{ body.id|tojson }},
    "amount": {{ body.data.object.amount|tojson }},
    "amount_received": {{ body.data.object.amount_received|default(0)|tojson }},
    "description": {{ body.data.object.description|default('', true)|truncate(40)|tojson }},
    "metadata": {{ body.data.object.metadata|default({})|tojson }},
    "methods": "{{ body.data.object.payment_method_types|length }}"
  }{% if body.data.object.customer %},
  "related": [{"prefect.resource.id": "stripe.customer.{{ body.data.object.customer }}",
               "prefect.resource.role": "customer"}]{% endif %}
}""",
    "application/json; charset=utf-8",
    # Stripe sends its events indented, as the file is.
    corpus_body("stripe/payment_intent.succeeded/payload.json", "evt_3HookLabFakeEvt0001"),
    headers={
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": "t=1733486400,v1=" + "3c" * 32,
    },
)

SLACK_MESSAGE = Workload(
    "slack-message",
    """{
  "event": "slack.{{ body.event.type }}{% if body.event.subtype %}.{{ body.event.subtype }}{% endif %}",
  "resource": {
    "prefect.resource.id": "slack.channel.{{ body.team_id }}.{{ body.event.channel }}",
    "slack.channel_type": "{{ body.event.channel_type|default('channel') }}",
    "slack.user": "{{ body.event.user|default('unknown') }}"
  },
  "payload": {
    "text": {{ body.event.text|default('')|truncate(200)|tojson }},
    "ts": {{ body.event.ts|tojson }},
    "thread_ts": {{ body.event.thread_ts|default(none)|tojson }},
    "files": {{ body.event.files|default([])|length }},
    "slack_event": {{ body.event_id|tojson }}
  }
}""",  # noqa: E501 (the event line reads best on one line, as people write it)
    JSON,
    corpus_body("slack/message/payload.json", "Ev0HOOKLAB01", compact=True),
    headers={
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": "1733486400",
        "X-Slack-Signature": "v0=" + "a7" * 32,
    },
)

# The bodies of real senders, beside the shapes above.
SENDERS = (GITHUB_PUSH, STRIPE_PAYMENT_INTENT, SLACK_MESSAGE)

WORKLOADS = {
    w.name: w
    for w in (
        SEED,
        ESCAPED_FORM_DEFAULT,
        FORM_FILTER_CHAIN,
        JSON_NESTED_TOJSON,
        IF_BLOCKS_NUMBERS,
        PASS_THROUGH,
        CLOUDEVENT_STRUCTURED,
        CLOUDEVENT_BINARY,
        CLOUDEVENT_BATCH,
        *SENDERS,
    )
}


GITHUB_CORPUS = CORPUS / "github"

GITHUB_TEMPLATE = """{
  "event": "github.{{ headers['X-GitHub-Event'] }}{% if body.action %}.{{ body.action }}{% endif %}",
  "resource": {
    "prefect.resource.id": "github.repo.{{ body.repository.full_name|default('none') }}",
    "prefect.resource.name": {{ body.repository.name|default('')|tojson }},
    "commits": "{{ body.commits|default([])|length }}"
  },
  "payload": {
    "sender": {{ body.sender.login|default('ghost')|tojson }},
    "title": {{ (body.pull_request.title or body.issue.title or '')|truncate(60)|tojson }},
    "ref": {{ body.ref|default(none)|tojson }}
  }
}"""  # noqa: E501 (the event's line reads best whole)


@dataclass(frozen=True)
class CorpusWorkload(Workload):
    """Real deliveries in turn, every event type of the corpus: request `i` is delivery
    `i % len(deliveries)`, with its `X-GitHub-Event` header. For replay (benchmarks/
    bench_replay.py), whose requests each carry their own header."""

    folder: Path = GITHUB_CORPUS

    def deliveries(self) -> list[tuple[str, str]]:
        return _deliveries(self.folder)

    def body(self, number: int) -> str:
        found = self.deliveries()
        return found[number % len(found)][1]

    def request(self, number: int) -> HookRequest:
        found = self.deliveries()
        kind, body = found[number % len(found)]
        headers = {**SENDER_HEADERS, "Content-Type": self.content_type, "X-GitHub-Event": kind}
        return HookRequest.fake(
            method="POST", path="/hooks/AERylZ_uewzpDx-8fcweHQ", headers=headers, body=body
        )


@functools.cache
def _deliveries(folder: Path) -> list[tuple[str, str]]:
    return [(path.parent.name, path.read_text()) for path in sorted(folder.glob("*/*.json"))]


GITHUB_EVERY_EVENT = CorpusWorkload("github-every-event", GITHUB_TEMPLATE, JSON, "")
