"""Certificate exporter: expiry, issuer and serial of certificates in files, on tokens and on TLS endpoints."""
