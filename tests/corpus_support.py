"""The deliveries kept in tests/corpus (see its README for where they come from)."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
GITHUB = CORPUS / "github"


def github_deliveries() -> list[Path]:
    """Every delivery body, sorted; each file's folder is its `X-GitHub-Event` type."""
    return sorted(GITHUB.glob("*/*.json"))
