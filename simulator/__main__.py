"""`python -m simulator [--host H] [--port P] [--seed seed.json]`: serve the simulator."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulator.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--seed", type=Path, default=None, help="seed JSON file")
    args = parser.parse_args()
    serve(args.host, args.port, args.seed)


if __name__ == "__main__":
    main()
