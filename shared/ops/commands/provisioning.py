"""``init`` (create the queue, its DLQ and the tables) and ``settings`` (what can be set)."""

from __future__ import annotations

import argparse
import json

from shared.ops.target import Target
from shared.store.provision import provision


def cmd_init(args: argparse.Namespace, target: Target) -> int:
    print(json.dumps(provision(target.settings), indent=2))
    return 0


def cmd_settings(args: argparse.Namespace, target: Target) -> int:
    for name, default, doc in target.settings.describe():
        print(f"{name}={default}\n    {doc}")
    return 0
