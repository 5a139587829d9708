"""The job's hierarchy: the key columns of a bottom series, the aggregation levels and the nesting to check."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from forecasting.job.common import IDENTIFIER, JOB_NAME, Strict


class HierarchySpec(Strict):
    """Which key columns identify a bottom series and which aggregation levels exist.

    `columns` are the key columns of a bottom series; each level lists the ones it groups by (total: none). A strict
    tree (total -> region -> warehouse -> sku) and a grouped structure (Australian tourism: (State / Region) x
    Purpose) are both written this way. `nested` names child -> parent keys that must be consistent in the data
    (a warehouse sits in one region). No default names a level of any one data set: left out, the levels are
    `total`, each key on its own and the bottom series (every key), which is right for crossed and nested keys
    alike, and nothing is checked for nesting (`forecasting init` writes the nesting it found in the data)."""

    columns: list[str] = Field(
        description="key columns of a bottom series (logical names mapped in source.sales.columns), top to bottom",
    )
    levels: dict[str, list[str]] = Field(
        default_factory=dict,
        description="level name -> the keys it groups by (total: []); the level grouping by every key is the bottom. "
        "Default: total, each key on its own, and the bottom named after its keys joined by '_'",
    )
    nested: dict[str, str] = Field(
        default_factory=dict,
        description="child key -> parent key that the data must respect (a child value under one parent only), "
        "checked by the data-quality gate; default: none",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_levels(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("levels") and isinstance(data.get("columns"), list):
            keys = [k for k in data["columns"] if isinstance(k, str)]
            levels: dict[str, list[str]] = {"total": []}
            levels |= {key: [key] for key in keys if len(keys) > 1}
            if keys:
                levels["_".join(keys)] = list(keys)
            data = data | {"levels": levels}
        return data

    @field_validator("levels")
    @classmethod
    def _top_to_bottom(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        """Mapping order means nothing in YAML: order levels by how many keys they group by, and each level's keys
        as in `columns` (so ids read total/CA/CA_1/FOODS_1_001 whatever order the file uses)."""
        keys = info.data.get("columns") or []
        position = {k: i for i, k in enumerate(keys)}
        ordered = sorted(value.items(), key=lambda item: len(item[1]))
        return {name: sorted(cols, key=lambda c: position.get(c, len(keys))) for name, cols in ordered}

    @model_validator(mode="after")
    def _check(self) -> HierarchySpec:
        reserved = {"unique_id", "level", "ds", "y", "total", "date", "quantity", "week", "price"}
        for key in self.columns:
            if not IDENTIFIER.match(key) or key in reserved:
                raise ValueError(f"hierarchy key {key!r} must be a plain identifier other than {sorted(reserved)}")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("hierarchy keys repeat")
        if not self.levels:
            raise ValueError("hierarchy needs at least one level")
        seen: list[frozenset[str]] = []
        for name, columns in self.levels.items():
            if not JOB_NAME.match(name):
                raise ValueError(f"level name {name!r} may hold letters, digits, '.', '_' and '-' only")
            unknown = set(columns) - set(self.columns)
            if unknown:
                raise ValueError(f"level {name!r} uses {sorted(unknown)}, which are not hierarchy keys")
            if frozenset(columns) in seen:
                raise ValueError(f"level {name!r} groups by the same keys as another level")
            seen.append(frozenset(columns))
        if list(self.levels.values())[-1] != self.columns:
            raise ValueError("one level must group by all keys (the bottom series)")
        for child, parent in self.nested.items():
            if child not in self.columns or parent not in self.columns:
                raise ValueError(f"nested {child!r} -> {parent!r}: both must be hierarchy keys")
        return self

    @property
    def bottom(self) -> str:
        return list(self.levels)[-1]

    @property
    def identity(self) -> list[str]:
        """The keys that identify a bottom series: parents implied by `nested` are left out (sku, warehouse)."""
        implied = {parent for child, parent in self.nested.items() if child in self.columns}
        return [k for k in self.columns if k not in implied]

    @property
    def names(self) -> list[str]:
        return list(self.levels)
