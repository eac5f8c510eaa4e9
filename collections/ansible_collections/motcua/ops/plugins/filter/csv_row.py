"""motcua.ops.csv_row: one line of a CSV file that people open in a spreadsheet."""

from __future__ import annotations

DOCUMENTATION = r"""
name: csv_row
short_description: One CSV line whose cells a spreadsheet keeps as text
description:
  - Quotes the cells where CSV needs it (commas, quotes, line breaks) and writes a cell that a spreadsheet
    would read as a formula (it starts with C(=), C(+), C(-), C(@), a tab or a carriage return) with a
    leading apostrophe, as the project's CSV files all do (the motcua.spreadsheet module).
  - The line ends with CR LF, as spreadsheet programs write CSV.
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
options:
  _input:
    description: The row's cells.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: A hand-over sheet
  ansible.builtin.copy:
    content: "{{ ['Tài khoản', 'Họ tên'] | motcua.ops.csv_row }}{{ ['hoapt', '=cmd'] | motcua.ops.csv_row }}"
    dest: /tmp/handover.csv
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The line, with its CR LF.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.motcua.ops.plugins.plugin_utils import project


def csv_row(cells):
    project.require("motcua.ops.csv_row", AnsibleFilterError)
    if isinstance(cells, str | bytes | dict) or not hasattr(cells, "__iter__"):
        raise AnsibleFilterError(f"motcua.ops.csv_row: expects a list of cells, got {type(cells).__name__}")
    return project.spreadsheet.csv_row(cells)


class FilterModule:
    def filters(self):
        return {"csv_row": csv_row}
