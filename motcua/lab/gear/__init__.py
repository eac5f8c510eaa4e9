"""Simulated Cisco IOS-style routers and switches for the lab (one process, many devices)."""
