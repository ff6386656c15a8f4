"""``dlq list`` and ``dlq redrive``: the dead-letter queue, shown by ids and counts, moved back."""

from __future__ import annotations

import argparse
import json

from shared.ops.dlq import list_letters, redrive
from shared.ops.progress import Progress
from shared.ops.target import Target


def cmd_dlq_list(args: argparse.Namespace, target: Target) -> int:
    letters = list_letters(
        target.client("sqs"), target.queue_url(target.settings.dlq_name), args.limit
    )
    if args.json:
        print(json.dumps([vars(letter) for letter in letters], indent=2))
        return 0
    if not letters:
        print("the dead-letter queue is empty")
        return 0
    header = f"{'message id':<36}  {'task':<30} {'sent at':<25} recv retr reports  first report"
    print(header)
    for m in letters:
        first = m.report_ids[0] if m.report_ids else "-"
        print(
            f"{m.message_id:<36}  {m.task:<30} {m.sent_at:<25} "
            f"{m.receives:>4} {m.retries:>4} {m.reports:>7}  {first}"
        )
    return 0


def cmd_dlq_redrive(args: argparse.Namespace, target: Target) -> int:
    s = target.settings
    sqs = target.client("sqs")
    dlq_url, queue_url = target.queue_url(s.dlq_name), target.queue_url(s.queue_name)
    depth = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    total = min(int(depth), args.limit) if args.limit else int(depth)
    bar = Progress("redrive", total)
    moved = redrive(sqs, dlq_url, queue_url, limit=args.limit, progress=bar.advance)
    print(f"moved {moved} message(s) from {s.dlq_name} back to {s.queue_name}")
    return 0
