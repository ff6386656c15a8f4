"""Where a command acts (``--local``/``--aws``, else ``SAFETYHEATMAP_OPS_MODE``, default ``auto``).

- local: the running ``make run`` stack, found through ``.run/stack.json`` (its emulator, its web
  URL, its worker processes); ``auto`` picks it whenever that stack is up;
- aws: the same ``SAFETYHEATMAP_*`` settings the services use (queue and table names, region;
  an endpoint override such as compose's emulator is honoured).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config.settings import Settings
from shared.model.taskmsg import celery_body
from shared.store import aws

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / ".run" / "stack.json"


class OpsError(RuntimeError):
    """A command cannot do what was asked; the message says why (exit status 1)."""


@dataclass
class Target:
    mode: str
    settings: Settings
    api_url: str
    stack_file: Path | None = None

    def client(self, service: str) -> Any:
        return aws.client(self.settings, service)

    def queue_url(self, name: str) -> str:
        url: str = self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        return url

    def send_task(self, task: str) -> None:
        """Queue `task` without arguments, as the schedule or a worker would."""
        queue = self.settings.queue_name
        body = celery_body(task, [], queue)
        self.client("sqs").send_message(QueueUrl=self.queue_url(queue), MessageBody=body)

    def state(self) -> dict[str, Any]:
        assert self.stack_file is not None
        data: dict[str, Any] = json.loads(self.stack_file.read_text())
        return data


def running_stack(path: Path) -> dict[str, Any] | None:
    """The state of a live ``make run`` stack, or None (no file, or its process is gone)."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def resolve(args: argparse.Namespace, settings: Settings) -> Target:
    mode = args.mode or settings.ops_mode
    stack_file = Path(args.stack)
    state = running_stack(stack_file) if mode in ("auto", "local") else None
    if mode == "local" and state is None:
        raise OpsError(f"no running `make run` stack ({stack_file} missing or its process gone)")
    if state is not None:
        local = settings.replace(aws_endpoint_url=state["moto_url"])
        return Target("local", local, args.url or state["url"], stack_file)
    url = args.url or f"http://{settings.host}:{settings.port}"
    return Target("aws", settings, url)
