"""The queue scaler's decisions (pure) and its calls (with fake AWS clients)."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import INFRA

sys.path.insert(0, str(INFRA / "safetyheatmap_infra" / "queue_scaler"))
import index as scaler


@pytest.mark.parametrize(
    ("visible", "in_flight", "delayed", "floor", "desired", "new_floor"),
    [
        (1, 0, 0, 0, 0, 1),  # one message wakes a worker: no '>' threshold to miss
        (0, 0, 1, 0, 0, 1),  # a delayed retry wakes one too
        (0, 3, 0, 1, 1, 1),  # in flight: keep the floor, never strand a busy task
        (0, 0, 0, 1, 1, 0),  # all quiet: release the floor; the idle alarm decides when
        (0, 0, 0, 0, 0, 0),
        (50, 2, 0, 1, 3, 1),
    ],
)
def test_decide_floor(visible, in_flight, delayed, floor, desired, new_floor):
    got, _ = scaler.decide(
        visible=visible, in_flight=in_flight, delayed=delayed, floor=floor, desired=desired
    )
    assert got == new_floor


def test_backlog_per_worker_counts_the_worker_being_woken():
    _, per_worker = scaler.decide(visible=50, in_flight=0, delayed=0, floor=0, desired=0)
    assert per_worker == 50
    _, per_worker = scaler.decide(visible=50, in_flight=0, delayed=0, floor=1, desired=4)
    assert per_worker == 12.5


class FakeSqs:
    def __init__(self, visible, in_flight, delayed=0):
        self.attributes = {
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(in_flight),
            "ApproximateNumberOfMessagesDelayed": str(delayed),
        }

    def get_queue_attributes(self, QueueUrl, AttributeNames):  # noqa: N803 - boto3 names
        assert QueueUrl == "https://sqs/q"
        return {"Attributes": self.attributes}


class FakeAutoScaling:
    def __init__(self, floor):
        self.floor = floor
        self.registered = []

    def describe_scalable_targets(self, ServiceNamespace, ResourceIds, ScalableDimension):  # noqa: N803
        assert ResourceIds == ["service/c/w"]
        return {"ScalableTargets": [{"MinCapacity": self.floor, "MaxCapacity": 4}]}

    def register_scalable_target(self, **kwargs):
        self.registered.append(kwargs)


class FakeEcs:
    def __init__(self, desired):
        self.desired = desired

    def describe_services(self, cluster, services):
        return {"services": [{"desiredCount": self.desired}]}


@pytest.fixture
def env(monkeypatch):
    for key, value in {
        "QUEUE_URL": "https://sqs/q",
        "QUEUE_NAME": "q",
        "CLUSTER_NAME": "c",
        "SERVICE_NAME": "w",
    }.items():
        monkeypatch.setenv(key, value)


def test_handler_wakes_from_zero_and_emits_emf(env, capsys):
    autoscaling = FakeAutoScaling(floor=0)
    counts = scaler.handler({}, None, clients=(FakeSqs(1, 0), autoscaling, FakeEcs(0)))
    assert autoscaling.registered == [
        {
            "ServiceNamespace": "ecs",
            "ResourceId": "service/c/w",
            "ScalableDimension": "ecs:service:DesiredCount",
            "MinCapacity": 1,
        }
    ]
    assert counts["WorkerFloor"] == 1
    line = json.loads(capsys.readouterr().out)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "SafetyHeatmap"
    assert directive["Dimensions"] == [["QueueName"]]
    assert line["QueueName"] == "q" and line["QueueVisible"] == 1 and line["QueueInFlight"] == 0


def test_handler_leaves_a_busy_service_alone(env, capsys):
    autoscaling = FakeAutoScaling(floor=1)
    scaler.handler({}, None, clients=(FakeSqs(0, 2), autoscaling, FakeEcs(2)))
    assert autoscaling.registered == []


def test_handler_releases_the_floor_when_idle(env, capsys):
    autoscaling = FakeAutoScaling(floor=1)
    scaler.handler({}, None, clients=(FakeSqs(0, 0), autoscaling, FakeEcs(1)))
    assert [r["MinCapacity"] for r in autoscaling.registered] == [0]
