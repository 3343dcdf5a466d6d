"""The benchmarks' workloads: a template and the requests a sender would make for it.

Each shape stands for templates people write: the seed (Prefect's docs example, lookups only),
`default` over percent-escaped form bodies, a filter chain over form bodies, nested lookups and
`tojson` over JSON bodies, and `if` blocks with number and humanize filters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from hooklab.core.examples import DYNAMIC_TEMPLATE
from hooklab.core.request import HookRequest

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
        import json

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

WORKLOADS = {
    w.name: w
    for w in (SEED, ESCAPED_FORM_DEFAULT, FORM_FILTER_CHAIN, JSON_NESTED_TOJSON, IF_BLOCKS_NUMBERS)
}
