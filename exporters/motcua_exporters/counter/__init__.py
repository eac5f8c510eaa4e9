"""Counter PC exporter: printers (CUPS), scanners (SANE), the USB token, the portal, the clock, scan storage."""
