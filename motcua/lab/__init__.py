"""The lab: a simulated ward network on one machine (counter PCs, gear, dossier stand-in)."""

from .lab import Lab, LabError, make_plan

__all__ = ["Lab", "LabError", "make_plan"]
