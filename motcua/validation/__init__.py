"""The project's input-checking toolkit: every input reader uses it.

- :mod:`.source`: strict UTF-8, YAML with the line of every key and item, CSV rows with their lines;
  problems are collected, never raised, so one run reports every error of every file.
- :mod:`.fields`: a typed-field :class:`Checker` for mappings (unknown keys with a suggestion,
  required keys, numbers in range, text that survived its encoding, choices, site codes).
- :mod:`.problems`: :class:`Problem` (file, line, entry, field, message) and :class:`InputError`.

The site registry (:mod:`motcua.registry`), the officials' and duty rosters, the relocation
schedule and the certificate ledger are each a model over these.
"""

from .fields import MISSING, Checker, Field, type_name
from .problems import InputError, Problem
from .source import LineDict, LineList, load_csv, load_yaml, read_text, shown, strip_diacritics, text_problem

__all__ = [
    "MISSING",
    "Checker",
    "Field",
    "InputError",
    "LineDict",
    "LineList",
    "Problem",
    "load_csv",
    "load_yaml",
    "read_text",
    "shown",
    "strip_diacritics",
    "text_problem",
    "type_name",
]
