"""The lab: a simulated ward network on one machine (counter PCs, gear, dossier stand-in)."""

from .lab import DEFAULT_CACHE, DEFAULT_HOME, Lab, LabError, make_plan

__all__ = ["DEFAULT_CACHE", "DEFAULT_HOME", "Lab", "LabError", "make_plan"]
