"""The `hooklab` command line: `hooklab webhook ...` as `prefect cloud webhook ...`, and more."""

from __future__ import annotations

from hooklab.cli.app import main

__all__ = ["main"]
