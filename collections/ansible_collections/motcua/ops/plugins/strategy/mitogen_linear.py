"""motcua.ops.mitogen_linear: Ansible's linear strategy run through mitogen (ansible.cfg's default).

mitogen ships its strategies as loose files under its own package, which
``strategy_plugins`` would have to name by a path that holds the Python version.
This collection makes the same strategy reachable by its FQCN instead. The
mitogen package itself comes pinned from PyPI (pyproject.toml).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: The linear strategy with mitogen's connection multiplexer
description:
  - Runs each task on every host in order, as C(ansible.builtin.linear) does, with mitogen's
    persistent interpreters and one SSH connection per host (docs/architecture.md, bench/counters_run.py).
  - "Plays on connections mitogen does not carry (C(network_cli)) set C(strategy: linear)."
  - Without the mitogen package the strategy fails to load; set C(strategy = linear) in ansible.cfg
    (or C(ANSIBLE_STRATEGY=linear)) to run without it.
author: motcua-ops developers, HCMC Digital Transformation Centre (@motcua-ops)
"""

from ansible.errors import AnsibleError

try:  # the mitogen package, installed in the venv beside ansible-core
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError as exc:
    from ansible.plugins.strategy.linear import StrategyModule as _Linear

    _MISSING = exc

    class StrategyModule(_Linear):
        def __init__(self, *args, **kwargs):
            raise AnsibleError(
                f"motcua.ops.mitogen_linear needs the mitogen package ({_MISSING}): "
                "run `make venv`, or set `strategy = linear` in ansible.cfg"
            )

else:
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
        pass
