"""Fleet tools for the people on duty: `motcua fleet diag` and `motcua fleet exec` (fabric)."""
