"""Jupyter: magics, widgets, HTML views, sending and deterministic mode."""
