"""Dossier system exporter: probes the portal, login page and APIs; scrapes its statistics."""
