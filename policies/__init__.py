"""Payer policies, value sets and the order-code table, shipped as package data (no code here)."""

from pathlib import Path


def directory() -> Path:
    """The folder holding the policy YAML files (inside the installed package)."""
    return Path(__file__).resolve().parent
