"""The people behind the counters and behind the alerts, checked against the registry.

- :mod:`.officials`: the officials' roster (who has an account on which site's counter PCs);
- :mod:`.duty`: the launch window's duty roster (who is on duty for which sites, when, and how to
  reach them), which :mod:`motcua.monitoring.alertmanager` compiles into alert routing;
- :mod:`.cli`: ``motcua roster`` and ``motcua duty``.
"""
