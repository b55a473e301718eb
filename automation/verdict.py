"""What an automated reviewer says about one item, whatever its kind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """One automated reviewer's answer on one item. `label` is None when it gives none: it
    abstained (no rule matched) or it failed (`failure` says how); either way a person decides
    the item."""

    item_id: str
    reviewer: str  # `auto:<name>`, never a person's id
    label: str | None
    confidence: float | None
    rationale: str
    failure: str | None = None

    @property
    def answered(self) -> bool:
        return self.label is not None
