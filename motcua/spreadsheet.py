"""CSV and XLSX that people open in a spreadsheet program: :mod:`motcua_exporters.core.spreadsheet`
(there so that the monitoring hosts' daily dossier report, which runs from the exporters' zip, writes
the same files as the controller's tools)."""

from motcua_exporters.core.spreadsheet import (  # noqa: F401 (re-exported)
    BOM,
    FORMULA_STARTS,
    PREFIXED,
    csv_document,
    csv_row,
    text_cell,
    xlsx_document,
)
