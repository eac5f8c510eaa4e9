"""motcua-notify: delivers Alertmanager's notifications by Zalo Official Account, Zalo ZNS and SMS."""

from __future__ import annotations

import sys

from ..core.runner import arguments, run
from .bridge import NotifyBridge

NAME = "motcua-notify"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(NAME, __doc__ or NAME, "127.0.0.1:9096", "/etc/motcua/notify.yml")
    return run(NAME, parser.parse_args(argv), NotifyBridge.from_file)


if __name__ == "__main__":
    sys.exit(main())
