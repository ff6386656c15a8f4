"""``safetyheatmap``: the operator's command line."""

from __future__ import annotations

import argparse
import json
import sys

from shared.provision import provision
from shared.settings import Settings


def _init(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(provision(settings), indent=2))
    return 0


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    for name, default, doc in settings.describe():
        print(f"{name}={default}\n    {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safetyheatmap",
        description="Operate SafetyHeatmap. Settings come from SAFETYHEATMAP_* variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="create the queue, its DLQ and the tables (idempotent)")
    p.set_defaults(func=_init)
    p = sub.add_parser("settings", help="list every setting with its default and meaning")
    p.set_defaults(func=_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args, Settings.from_env()))


if __name__ == "__main__":
    sys.exit(main())
