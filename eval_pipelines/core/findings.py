"""What a health check found, in core terms, so the Dagster layer turns every one into an asset check
the same way (assets/checks.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One health check's outcome: passed, what it saw, and a sentence for a user."""

    passed: bool
    description: str
    metadata: dict[str, Any]
