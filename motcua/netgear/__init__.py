"""Network gear (routers and switches of every site): intent, drift, backup, restore.

``intent`` derives each device's configuration from the registry; ``config``
parses IOS text and compares it with the intent; ``fleet`` reaches the
devices; ``ops`` are the operations behind ``motcua netgear`` and the safe
change in ``playbooks/network.yml``.
"""
