"""Go-live readiness: live checks per site, and the report (motcua readiness)."""
