"""Monitoring config from the registry: alert rules, inhibition, duty-roster routing, dashboards."""
