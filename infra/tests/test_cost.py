"""Cost model (infra/safetyheatmap_infra/cost.py): its counts and DEPLOY.md's table are current."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from conftest import REPO
from safetyheatmap_infra import cost
from safetyheatmap_infra.config import Config


def test_deploy_md_cost_table_is_current():
    text = (REPO / "docs" / "DEPLOY.md").read_text()
    assert "<!-- cost:start -->" in text
    assert cost.render(text) == text, "docs/DEPLOY.md cost table is stale: run `make cost-docs`"


def test_alarm_metrics_are_what_the_stack_alarms_on(synth, app_name):
    # CloudWatch bills an alarm per metric it reads: a math alarm counts each of its metrics.
    counted = 0
    for alarm in synth.resources(app_name, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if "MetricName" in props:
            counted += 1
        else:
            counted += sum(1 for m in props["Metrics"] if "MetricStat" in m)
    assert counted == cost.ALARM_METRICS


def test_scaler_metrics_are_what_the_scaler_publishes():
    source = (REPO / "infra/safetyheatmap_infra/queue_scaler/index.py").read_text()
    (names,) = re.findall(r"names = (\[.*?\])", source)
    assert len(eval(names)) == cost.SCALER_METRICS  # noqa: S307 - a list literal of our own


def test_the_worked_example_of_the_docs():
    # docs/DEPLOY.md: `730 x (0.25 x 0.04048 + 0.5 x 0.004445) = $9.01`, the web on demand.
    config = Config()
    assert cost.HOURS * cost.fargate_hour(
        config.web_cpu, config.web_memory, cost.Prices(), spot=False
    ) == pytest.approx(9.01, abs=0.005)


def test_idle_runs_no_worker_and_the_lean_switches_cut_the_bill():
    idle = cost.monthly(Config(), cost.Load())
    assert idle["Fargate Spot worker"] == 0 and idle["API Gateway HTTP API"] == 0
    lean = cost.monthly(replace(Config(), web_spot=True, container_insights=False), cost.Load())
    assert lean["Container Insights"] == 0
    assert lean["Fargate web"] == pytest.approx(idle["Fargate web"] * cost.Prices().spot_fraction)
    assert sum(lean.values()) < 10 < sum(idle.values())


def test_the_bill_grows_with_the_load():
    totals = [
        sum(cost.monthly(Config(), cost.Load(reports_per_day=n)).values())
        for n in (0, 1_000, 10_000, 100_000)
    ]
    assert totals == sorted(totals) and totals[0] < totals[-1]


def test_the_command_prints_an_estimate(capsys):
    assert cost.main(["--reports-per-day", "2000", "--web-spot"]) == 0
    out = capsys.readouterr().out
    assert "| monthly, USD | 2000 reports/day |" in out and "**total**" in out
