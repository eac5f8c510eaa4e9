"""What every exporter shares: config loading, the HTTP server, logging, exposition helpers."""
