"""Files of decisions and golden items into the lake: validated whole, stored once.

A file is read, validated against the contract and the policy, and only then written; a bad
row refuses the whole file and the lake is untouched. Importing the same file again adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flywheel.lake import DecisionImport, GoldenImport, Lake
from flywheel.policy import Policy
from flywheel.records import read_table, validate_decisions, validate_golden


@dataclass(frozen=True)
class ImportReport:
    rows: int
    ignored_columns: list[str]
    result: DecisionImport | GoldenImport


def import_decisions(path: Path, policy: Policy, lake: Lake) -> ImportReport:
    validated = validate_decisions(read_table(path), policy, source=str(path))
    result = lake.append_decisions(policy.name, validated.frame, source=str(path))
    return ImportReport(len(validated.frame), validated.ignored_columns, result)


def import_golden(path: Path, policy: Policy, lake: Lake) -> ImportReport:
    validated = validate_golden(read_table(path), policy, source=str(path))
    result = lake.import_golden(policy.name, validated.frame, source=str(path))
    return ImportReport(len(validated.frame), validated.ignored_columns, result)
