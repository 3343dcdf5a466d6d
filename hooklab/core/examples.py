"""Templates from Prefect's webhook docs: a place to start, and the benchmarks' workload."""

from __future__ import annotations

# A static template: every request, whatever it carries, becomes the same event.
STATIC_TEMPLATE = """{
  "event": "model-update",
  "resource": {
    "prefect.resource.id": "product.models.big-language-model",
    "prefect.resource.name": "Big Language Model"
  }
}"""

# The dynamic template, for form posts such as `model=recs&friendly_name=Recommendations`.
DYNAMIC_TEMPLATE = """{
  "event": "model-update",
  "resource": {
    "prefect.resource.id": "product.models.{{ body.model }}",
    "prefect.resource.name": "{{ body.friendly_name }}",
    "producing-team": "Data Science"
  }
}"""
