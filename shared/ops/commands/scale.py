"""``scale``: the number of workers (local processes, or the ECS service's desired count)."""

from __future__ import annotations

import argparse
import json
import time

from shared.ops.target import OpsError, Target


def cmd_scale(args: argparse.Namespace, target: Target) -> int:
    wanted = args.workers
    if wanted < 0:
        raise OpsError("--workers must be 0 or more")
    if target.mode == "aws":
        s = target.settings
        service = target.client("ecs").update_service(
            cluster=s.ecs_cluster, service=s.ecs_worker_service, desiredCount=wanted
        )["service"]
        print(
            f"ECS service {s.ecs_worker_service}: desired {service['desiredCount']} "
            f"(running {service['runningCount']}). The queue scaler may raise it again while "
            "messages wait; see docs/OPERATIONS.md."
        )
        return 0
    assert target.stack_file is not None
    control = target.stack_file.with_name("control.json")
    tmp = control.with_suffix(".tmp")
    tmp.write_text(json.dumps({"workers": wanted}))
    tmp.replace(control)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not control.exists() and target.state().get("workers") == wanted:
            print(f"{wanted} worker process(es) running")
            return 0
        time.sleep(0.2)
    raise OpsError(f"the stack did not reach {wanted} worker(s) within {args.timeout:.0f}s")
