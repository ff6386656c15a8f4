"""The worker scales 0..N on fresh queue counts without the usual traps (docs/DEPLOY.md)."""

from __future__ import annotations

import json


def _worker_target(synth, app_name, config):
    for logical_id, target in synth.resources(
        app_name, "AWS::ApplicationAutoScaling::ScalableTarget"
    ).items():
        if target["Properties"]["ResourceId"] == (
            f"service/{config.cluster_name}/{config.worker_service_name}"
        ):
            return logical_id, target["Properties"]
    raise AssertionError("no worker scalable target")


def _policies(synth, app_name, target_id):
    return {
        logical_id: p["Properties"]
        for logical_id, p in synth.resources(
            app_name, "AWS::ApplicationAutoScaling::ScalingPolicy"
        ).items()
        if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    }


def _alarm_for(synth, app_name, policy_id):
    found = [
        a["Properties"]
        for a in synth.resources(app_name, "AWS::CloudWatch::Alarm").values()
        if {"Ref": policy_id} in a["Properties"].get("AlarmActions", [])
    ]
    assert len(found) == 1
    return found[0]


def test_worker_scales_between_zero_and_max(synth, app_name, config):
    _, target = _worker_target(synth, app_name, config)
    assert target["MinCapacity"] == 0
    assert target["MaxCapacity"] == config.worker_max_tasks
    assert "AWSServiceRoleForApplicationAutoScaling_ECSService" in json.dumps(target["RoleARN"])


def test_no_target_tracking_and_no_cpu_scaling_on_worker(synth, app_name, config):
    target_id, _ = _worker_target(synth, app_name, config)
    policies = _policies(synth, app_name, target_id)
    assert {p["PolicyType"] for p in policies.values()} == {"StepScaling"}
    for policy_id in policies:
        alarm = _alarm_for(synth, app_name, policy_id)
        assert "CPUUtilization" not in json.dumps(alarm)
        assert "AWS/SQS" not in json.dumps(alarm)  # late metrics; the scaler's own are fresh


def test_scale_out_alarm_fires_at_the_threshold(synth, app_name, config):
    target_id, _ = _worker_target(synth, app_name, config)
    (policy_id,) = [
        pid
        for pid, p in _policies(synth, app_name, target_id).items()
        if p["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ChangeInCapacity"
    ]
    alarm = _alarm_for(synth, app_name, policy_id)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["MetricName"] == "BacklogPerWorker"
    assert alarm["Namespace"] == "SafetyHeatmap"
    assert alarm["Period"] == 60
    steps = _policies(synth, app_name, target_id)[policy_id]["StepScalingPolicyConfiguration"]
    assert all(s["ScalingAdjustment"] > 0 for s in steps["StepAdjustments"])
    assert steps["StepAdjustments"][0]["MetricIntervalLowerBound"] == 0


def test_scale_to_zero_only_when_visible_and_in_flight_are_zero(synth, app_name, config):
    target_id, _ = _worker_target(synth, app_name, config)
    (policy_id,) = [
        pid
        for pid, p in _policies(synth, app_name, target_id).items()
        if p["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ExactCapacity"
    ]
    steps = _policies(synth, app_name, target_id)[policy_id]["StepScalingPolicyConfiguration"]
    assert steps["StepAdjustments"] == [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]
    alarm = _alarm_for(synth, app_name, policy_id)
    assert alarm["ComparisonOperator"] == "LessThanOrEqualToThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"]
    assert alarm["EvaluationPeriods"] == config.idle_minutes_before_zero
    assert alarm["TreatMissingData"] == "notBreaching"  # no data is no proof of idleness
    metric_names = {
        q["MetricStat"]["Metric"]["MetricName"] for q in alarm["Metrics"] if "MetricStat" in q
    }
    assert {"QueueVisible", "QueueInFlight"} <= metric_names
    (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
    assert "inflight" in expression and "visible" in expression


def test_queue_scaler_runs_every_minute_and_may_move_the_floor(synth, app_name, config):
    functions = [
        f["Properties"]
        for f in synth.resources(app_name, "AWS::Lambda::Function").values()
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("SERVICE_NAME")
        == config.worker_service_name
    ]
    assert len(functions) == 1
    scaler = functions[0]
    assert scaler["Timeout"] < 60  # a tick ends before the next one starts
    assert "ReservedConcurrentExecutions" not in scaler  # would fail on a new account (quota 10)
    ticks = [
        s["Properties"]
        for s in synth.resources(app_name, "AWS::Scheduler::Schedule").values()
        if s["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    ]
    assert len(ticks) == 1
    # A flexible window would let the Scheduler run a tick up to its width late: the 2-minute
    # wake-up budget (docs/DEPLOY.md) counts on every minute.
    assert ticks[0]["FlexibleTimeWindow"] == {"Mode": "OFF"}
    policy = json.dumps(synth.resources(app_name, "AWS::IAM::Policy"))
    assert "application-autoscaling:RegisterScalableTarget" in policy
    assert "sqs:GetQueueAttributes" in policy
