"""Dated parameters: YAML files under parameters/, one per fiscal year in which the law changed.
Each file holds only the entries that changed (value + source); the parameters of a fiscal year
are the files up to that year merged in order. A law revision is a new file, never an `if`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from kiban.tax.model import SUPPORTED_FISCAL_YEARS

DIRECTORY = Path(__file__).parent / "parameters"


@dataclass(frozen=True)
class Parameters:
    fiscal_year: int
    values: dict[str, Any]
    sources: dict[str, str]
    effective_from: dict[str, int]  # the fiscal year of the entry in force

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def _files() -> list[tuple[int, dict[str, Any]]]:
    loaded = []
    for path in sorted(DIRECTORY.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        loaded.append((int(data["effective_fiscal_year"]), data["parameters"]))
    return sorted(loaded, key=lambda pair: pair[0])


@cache
def parameters_for(fiscal_year: int) -> Parameters:
    if fiscal_year not in SUPPORTED_FISCAL_YEARS:
        raise KeyError(f"no parameters for fiscal year {fiscal_year}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    effective: dict[str, int] = {}
    for year, entries in _files():
        if year > fiscal_year:
            break
        for key, entry in entries.items():
            if not isinstance(entry, dict) or "value" not in entry or not entry.get("source"):
                raise ValueError(f"parameters/{year}.yaml: {key} needs a value and a source")
            values[key] = entry["value"]
            sources[key] = str(entry["source"])
            effective[key] = year
    return Parameters(fiscal_year, values, sources, effective)
