"""A narrow guard around kombu's async SQS receive (kombu 5.7.0).

When the SQS endpoint refuses connections (an outage, or the emulator restarting), kombu's
async ReceiveMessage callback gets a list instead of a response dict and raises
``AttributeError: 'list' object has no attribute 'get'`` inside the event loop, which Celery
treats as unrecoverable: the whole worker exits. We treat that answer as "no messages" and
pause one second so an outage does not turn into a hot loop; the next poll reconnects.
"""

from __future__ import annotations

import logging
import time
from typing import Any

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
    setattr(Channel, _PATCHED, True)
