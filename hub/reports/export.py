"""Reports as CSV: one line per row, nested figures flattened into columns
(`first_response_median_seconds`), the summary as `metric,value` lines.

Text that people typed (agent and campaign names) never runs as a formula in
the spreadsheet that opens the file (`hub.spreadsheet`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from hub.spreadsheet import cell


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return cell(value)


def rows_csv(rows: Sequence[BaseModel], columns: Sequence[str] | None = None) -> str:
    """The rows as CSV with a header line (`columns` names them when there are none)."""
    flat = [flatten(row.model_dump(mode="json")) for row in rows]
    header = list(flat[0]) if flat else list(columns or ())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in flat:
        writer.writerow([_cell(row.get(name)) for name in header])
    return out.getvalue()


def summary_csv(summary: BaseModel) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["metric", "value"])
    for name, value in flatten(summary.model_dump(mode="json")).items():
        writer.writerow([name, _cell(value)])
    return out.getvalue()
