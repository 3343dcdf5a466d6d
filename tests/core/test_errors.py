"""The one map from errors to statuses and details, read by the API, the CLI and the magics."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from hooklab.core.errors import (
    USER_ERRORS,
    ApiError,
    EnforcementError,
    InvalidInput,
    ServiceAccountNotFound,
    WebhookNotFound,
    answer_for,
)
from hooklab.core.signatures import UnknownPreset
from hooklab.core.templates import TemplateError

ID = "1c8a3e36-52c7-4b7a-9d4e-6a0f1f5f2b11"


class Named(BaseModel):
    name: str


def validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Named.model_validate({})
    return caught.value


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (WebhookNotFound(ID), 404, f"Webhook with id '{ID}' not found."),
        (WebhookNotFound("models", reference=True), 404, "Webhook 'models' not found."),
        (WebhookNotFound(ID, reference=True), 404, f"Webhook with id '{ID}' not found."),
        (ServiceAccountNotFound(ID), 404, f"Service account with id '{ID}' not found."),
        (TemplateError("unexpected '}'", 2), 422, "Invalid template: line 2: unexpected '}'"),
        (EnforcementError("enforcement is on"), 422, "enforcement is on"),
        (UnknownPreset("nope"), 422, "Unknown signature preset 'nope': choose one of"),
        (InvalidInput("A webhook needs a name"), 422, "A webhook needs a name"),
        (ApiError(401, "Missing key"), 401, "Missing key"),
    ],
)
def test_each_error_answers_one_status_and_a_one_line_detail(
    error: Exception, status: int, detail: str
) -> None:
    answer = answer_for(error)
    assert answer is not None and isinstance(error, USER_ERRORS)
    assert answer.status == status
    assert answer.detail.startswith(detail) and "\n" not in answer.detail


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("bug"),
        KeyError("x"),
        TypeError("t"),
        # A ValueError is a bug unless hooklab raised it as a person's mistake: pandas' own,
        # say, or a pydantic model hooklab built wrong (the API turns a body's into a 422).
        ValueError("cannot reindex on an axis with duplicate labels"),
        validation_error(),
    ],
)
def test_anything_else_is_not_an_answer(error: Exception) -> None:
    assert answer_for(error) is None and not isinstance(error, USER_ERRORS)
