"""The `orchestration` params section and the choice between a Prefect flow and a plain call."""
from __future__ import annotations

import pytest
import yaml

from pipeline.config import ConfigError
from pipeline.orchestration import settings as settings_module
from pipeline.orchestration.settings import load_orchestration, parse_orchestration, prefect_api_url, use_prefect
from pipeline.config import load_params
from pipeline.testing.audio import repo_params_raw


def test_defaults_without_the_section_and_bad_values_name_their_key(tmp_path):
    settings = parse_orchestration(None)
    assert settings.task_runner == "processes" and settings.scheduler_address is None
    assert settings.train_processes == 1 and settings.rebuild.cron == "0 3 * * *" and settings.resolved_workers >= 1
    with pytest.raises(ConfigError, match=r"^orchestration\.task_runner = 'fibers': expected threads or processes$"):
        parse_orchestration({"task_runner": "fibers"})
    with pytest.raises(ConfigError, match=r"^orchestration\.rebuild\.cron = 'daily': expected a cron expression"):
        parse_orchestration({"rebuild": {"cron": "daily"}})
    with pytest.raises(ConfigError, match=r"^orchestration\.speed: unknown key \(known: rebuild, scheduler_address, "):
        parse_orchestration({"speed": 3})
    with pytest.raises(ConfigError, match=r"^orchestration\.workers = '4': expected an integer$"):
        parse_orchestration({"workers": "4"})
    with pytest.raises(ConfigError, match=r"^orchestration\.rebuild\.dvc_push = 'yes': expected true or false$"):
        parse_orchestration({"rebuild": {"dvc_push": "yes"}})
    with pytest.raises(ConfigError, match=r"^orchestration = \['threads'\]: expected a mapping$"):
        parse_orchestration(["threads"])


def test_the_section_is_read_from_params_and_ignored_by_the_pipeline_parameters(tmp_path):
    raw = repo_params_raw()
    raw["orchestration"] = {"task_runner": "threads", "workers": 3, "scheduler_address": "tcp://10.0.0.1:8786",
                            "rebuild": {"cron": "*/30 * * * *", "dvc_push": True, "remote": "s3store"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    settings = load_orchestration(tmp_path / "params.yaml")
    assert settings.workers == 3 and settings.scheduler_address == "tcp://10.0.0.1:8786"
    assert settings.rebuild.cron == "*/30 * * * *" and settings.rebuild.dvc_push
    assert settings.rebuild.remote == "s3store"
    assert load_params(tmp_path / "params.yaml").profile == raw["profile"]
    assert load_orchestration(tmp_path / "missing.yaml") == parse_orchestration(None)


def test_prefect_is_used_only_when_an_api_is_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delenv("PIPELINE_PREFECT", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert prefect_api_url() is None and not use_prefect()
    (tmp_path / "profiles.toml").write_text('active = "local"\n[profiles.local]\n'
                                            'PREFECT_API_URL = "http://127.0.0.1:9/api"\n')
    assert prefect_api_url() == "http://127.0.0.1:9/api"
    assert not use_prefect()  # configured but nothing answers: a plain run (with a warning), not a failed stage
    monkeypatch.setattr(settings_module, "api_reachable", lambda url: True)
    assert use_prefect()
    monkeypatch.setenv("PREFECT_API_URL", "")  # an empty variable switches the profile's server off
    assert not use_prefect()
    monkeypatch.setenv("PIPELINE_PREFECT", "always")
    assert use_prefect()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("PIPELINE_PREFECT", "never")
    assert not use_prefect()
    monkeypatch.setenv("PIPELINE_PREFECT", "sometimes")
    with pytest.raises(ConfigError, match="PIPELINE_PREFECT"):
        use_prefect()
