"""`python -m celery_schedule demo`: the embedded demo (see celery_schedule.demo)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m celery_schedule")
    commands = parser.add_subparsers(dest="command", metavar="{demo}", required=True)
    demo = commands.add_parser(
        "demo", help="run a self-contained Django + Celery demo (no server needed)")
    demo.add_argument("--keep", action="store_true",
                      help="keep the temporary folder (database, broker, logs) for inspection")
    worker = commands.add_parser("_demo-worker")
    worker.add_argument("folder")
    worker.add_argument("parent_pid", type=int)
    args = parser.parse_args(argv)
    if args.command == "_demo-worker":
        from .demo import worker as demo_worker

        demo_worker.run(args.folder, args.parent_pid)
        return 0
    from .demo.run import main as run_demo

    return run_demo(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
