"""Prometheus exporters for the one-stop shops (see exporters/README.md)."""

__version__ = "0.1.0"
