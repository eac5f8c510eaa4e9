"""Counters that configure themselves (ansible-pull, docs/pull.md): the controller's side."""
