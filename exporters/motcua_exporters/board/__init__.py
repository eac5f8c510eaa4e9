"""The duty board (docs/board.md): one page for the on-duty staff - the whole city, each site, who is on duty
and what to do - served from the monitoring hosts, live from the Prometheus and Alertmanager pair."""
