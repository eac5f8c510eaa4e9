"""motcua-ops: infrastructure as code and monitoring for HCMC's one-stop shops."""

__version__ = "0.1.0"
