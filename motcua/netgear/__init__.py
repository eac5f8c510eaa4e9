"""Network gear (routers and switches of every site): drift, backup, verify, restore.

Each device's intent is compiled from the registry by :mod:`motcua.inventory.gear`
(the inventory serves it to the playbook too); ``config`` parses IOS text and
compares it with the intent; ``devices`` selects the devices of a command;
``ops`` are the operations behind ``motcua netgear`` and the safe change in
``playbooks/network.yml``. Credentials: :class:`motcua.access.GearAccess`.
"""
