"""The package's public API stays small, sorted and importable."""

from __future__ import annotations

import hooklab


def test_all_is_sorted_and_short() -> None:
    assert hooklab.__all__ == sorted(hooklab.__all__)
    assert len(hooklab.__all__) <= 20


def test_every_public_name_is_importable() -> None:
    for name in hooklab.__all__:
        assert getattr(hooklab, name) is not None, name


def test_the_readme_entry_points_are_public() -> None:
    for name in ("Workspace", "HookRequest", "TemplateError", "WebhookNotFound", "Outcome"):
        assert name in hooklab.__all__
