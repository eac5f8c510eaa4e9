"""Relocation: the schedule of counter PCs moving between sites, and one move's steps.

- :mod:`.schedule`: the schedule model (``relocation.yml``) checked against the registry,
  each PC's new name and address resolved from the IP plan;
- :mod:`.move`: one move's steps (status, the move's silence, backup verification, the
  verification at the new site and its record), as ``playbooks/relocation.yml`` calls them;
- :mod:`.cli`: ``motcua relocation``.
"""

from .schedule import SCHEDULE_NAME, HostMove, Move, check_schedule, load_schedule

__all__ = ["SCHEDULE_NAME", "HostMove", "Move", "check_schedule", "load_schedule"]
