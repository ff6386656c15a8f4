"""A narrow guard around kombu's async SQS receive (kombu 5.7.0).

Two failures of the long poll kill the whole worker ("Unrecoverable error") in kombu 5.7.0:
- a refused connection or a 5xx: kombu turns the answer into ``[]`` and then calls
  ``.get('Messages')`` on it (``AttributeError``);
- any other HTTP error, e.g. ``QueueDoesNotExist`` while the emulator restarts, or a throttling
  400: kombu raises from the event loop.
For ReceiveMessage only, both become "no messages" after a one-second pause (no hot loop while
SQS is away); the next poll tries again and the worker keeps its state.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kombu.asynchronous.aws.connection import AsyncAWSQueryConnection
from kombu.transport.SQS import Channel

log = logging.getLogger("safetyheatmap.kombu")
_PATCHED = "_safetyheatmap_guarded"


def guard_receive() -> None:
    if getattr(Channel, _PATCHED, False):
        return
    original = Channel._on_messages_ready

    def on_messages_ready(self: Channel, queue: Any, qname: str, messages: Any) -> int:
        if not isinstance(messages, dict):
            log.warning("SQS receive failed; retrying", extra={"queue": qname})
            time.sleep(1.0)
            return 0
        result: int = original(self, queue, qname, messages)
        return result

    Channel._on_messages_ready = on_messages_ready  # type: ignore[method-assign]

    list_ready = AsyncAWSQueryConnection._on_list_ready

    def on_list_ready(self: Any, parent: Any, markers: Any, operation: str, response: Any) -> Any:
        if operation != "ReceiveMessage":
            return list_ready(self, parent, markers, operation, response)
        try:
            return list_ready(self, parent, markers, operation, response)
        except Exception as exc:
            log.warning("SQS receive answered an error; retrying", extra={"error": str(exc)[:200]})
            return []

    AsyncAWSQueryConnection._on_list_ready = on_list_ready  # type: ignore[method-assign]
    setattr(Channel, _PATCHED, True)
