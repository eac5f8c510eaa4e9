"""python -m motcua.lab.gear serve --config devices.json --state DIR"""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="motcua.lab.gear", description="Simulated IOS routers and switches")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve every device in the config over SSH")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--state", type=Path, required=True, help="startup configs, host keys, faults")
    p.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.INFO if args.verbose else logging.WARNING)
    asyncio.run(serve(args.config, args.state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
