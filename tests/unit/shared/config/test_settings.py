from __future__ import annotations

import pytest

from shared.config.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s.port == 8000
    assert s.endpoint_url is None  # no override: boto3 talks to AWS itself
    assert s.bandwidth_m == 200.0 and s.max_zoom == 16 and s.privacy_min_reports == 3


def test_coercion_of_each_kind() -> None:
    s = Settings.from_env(
        {
            "SAFETYHEATMAP_PORT": " 9001 ",
            "SAFETYHEATMAP_BANDWIDTH_M": "150.5",
            "SAFETYHEATMAP_CORS_ORIGINS": "https://a.example, https://b.example,",
            "SAFETYHEATMAP_AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "UNRELATED": "x",
        }
    )
    assert s.port == 9001
    assert s.bandwidth_m == 150.5
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAFETYHEATMAP_PORT", "eighty"),
        ("SAFETYHEATMAP_BANDWIDTH_M", "nan"),
        ("SAFETYHEATMAP_BANDWIDTH_M", "-1"),
        ("SAFETYHEATMAP_MAX_ZOOM", "30"),
        ("SAFETYHEATMAP_PRIVACY_MIN_REPORTS", "0"),
        ("SAFETYHEATMAP_WEB_WORKER_CLASS", "sync"),
        ("SAFETYHEATMAP_WEB_CONNECTIONS", "0"),
    ],
)
def test_bad_values_fail_at_start_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name.removeprefix("SAFETYHEATMAP_")):
        Settings.from_env({name: value})


def test_visibility_timeout_must_outlast_the_longest_task() -> None:
    with pytest.raises(SettingsError, match="VISIBILITY_TIMEOUT"):
        Settings.from_env({"SAFETYHEATMAP_VISIBILITY_TIMEOUT": "30"})


def test_describe_lists_every_setting_with_a_meaning() -> None:
    rows = Settings().describe()
    assert len(rows) == len({r[0] for r in rows})
    assert all(name.startswith("SAFETYHEATMAP_") and doc for name, _, doc in rows)
