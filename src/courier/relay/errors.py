"""Errors that stop a relay before it starts; the message says what to do."""

from __future__ import annotations


class RelaySetupError(RuntimeError):
    """The slot, publication or table is missing or unusable (``courier relay run`` exits 2)."""
