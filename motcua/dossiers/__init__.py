"""Dossier processing (Decision 766/QĐ-TTg): the record model, its sources and the indicators."""
