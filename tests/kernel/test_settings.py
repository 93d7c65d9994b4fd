"""Settings: every NEURON_* variable resolved in one place, with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.settings import SettingsError, load_settings
from kernel.tokens import DEMO_KEY, Tokenizer, TokenKeyError


def test_data_dir_override_moves_every_subroot_and_ignores_their_variables(tmp_path: Path):
    env = {"NEURON_MODE": "test", "NEURON_LAKE_DIR": "/elsewhere/lake", "NEURON_DATA_DIR": "/ignored"}
    s = load_settings(env, data_dir=tmp_path)
    assert s.lake_dir == tmp_path / "lake" and s.landing_dir == tmp_path / "landing"
    assert s.warehouse_path == tmp_path / "warehouse" / "neuron.duckdb"
    assert load_settings(env).lake_dir == Path("/elsewhere/lake")


def test_publisher_endpoints_are_read_per_consumer_and_keep_their_secret_out_of_repr():
    env = {"NEURON_PUBLISHER_ZHILIAN_PUTUO": "https_push", "NEURON_ZHILIAN_PUTUO_URL": "https://rx",
           "NEURON_ZHILIAN_PUTUO_ACCESS_KEY": "ak", "NEURON_ZHILIAN_PUTUO_SECRET_KEY": "very-secret",
           "NEURON_PUBLIC_SECURITY_URL": "https://ps"}
    s = load_settings(env)
    zp = s.endpoint("zhilian_putuo")
    assert (zp.publisher, zp.url, zp.access_key, zp.secret_key) == ("https_push", "https://rx", "ak", "very-secret")
    assert "very-secret" not in repr(zp) and "very-secret" not in repr(s)
    assert s.endpoint("public_security").missing() == ["NEURON_PUBLIC_SECURITY_ACCESS_KEY",
                                                       "NEURON_PUBLIC_SECURITY_SECRET_KEY"]
    assert s.endpoint("nobody").publisher is None


@pytest.mark.parametrize("raw", ["0", "-3", "thirty", ""])
def test_a_bad_retention_window_names_the_variable(raw: str):
    s = load_settings({"NEURON_LANDING_RETENTION_DAYS": raw})
    with pytest.raises(SettingsError, match="NEURON_LANDING_RETENTION_DAYS"):
        _ = s.landing_retention_days


def test_bad_numbers_and_modes_name_the_variable():
    with pytest.raises(SettingsError, match="NEURON_PUBLISH_MAX_RETRIES"):
        load_settings({"NEURON_PUBLISH_MAX_RETRIES": "many"})
    with pytest.raises(SettingsError, match="NEURON_MODE"):
        load_settings({"NEURON_MODE": "staging"})


@pytest.mark.parametrize("raw", ["100", "lots", "-1"])
def test_a_bad_step_memory_names_the_variable(raw: str):
    with pytest.raises(SettingsError, match="NEURON_STEP_MEMORY_MB"):
        load_settings({"NEURON_STEP_MEMORY_MB": raw})


def test_the_step_memory_is_each_steps_duckdb_limit(tmp_path: Path, monkeypatch):
    from kernel.resource import NeuronResource

    monkeypatch.setenv("NEURON_MODE", "test")
    monkeypatch.setenv("NEURON_STEP_MEMORY_MB", "700")
    con = NeuronResource(data_dir=str(tmp_path)).duckdb()
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "667.5 MiB"  # 700 MB
    monkeypatch.delenv("NEURON_STEP_MEMORY_MB")
    assert load_settings({}).step_memory_mb == 1536
    # the bronze parses' batches follow it: 3 GB is the 16 MB the parses used before the limit was a setting
    assert load_settings({}).parse_batch_bytes == 8 * 2**20
    assert load_settings({"NEURON_STEP_MEMORY_MB": "3072"}).parse_batch_bytes == 16 * 2**20


@pytest.mark.parametrize("raw", ["0", "65", "two"])
def test_a_bad_step_concurrency_names_the_variable(raw: str):
    with pytest.raises(SettingsError, match="NEURON_STEP_CONCURRENCY"):
        load_settings({"NEURON_STEP_CONCURRENCY": raw})


def test_the_daily_run_starts_as_many_steps_at_once_as_the_setting_says_not_one_per_core():
    from pipelines.jobs import daily_run_config

    def steps_at_once(env: dict) -> int:
        return daily_run_config(load_settings(env))["execution"]["config"]["multiprocess"]["max_concurrent"]

    assert steps_at_once({}) == 2 and steps_at_once({"NEURON_STEP_CONCURRENCY": "3"}) == 3
    # the forkserver with the preloaded modules stays
    assert daily_run_config(load_settings({}))["execution"]["config"]["multiprocess"]["start_method"] == {
        "forkserver": {"preload_modules": ["pipelines.preload"]}}


@pytest.mark.parametrize(("env", "message"), [
    ({"NEURON_LAKE_URI": "/var/lib/lake"}, "NEURON_LAKE_URI"),
    ({"NEURON_LAKE_URI": "s3://"}, "NEURON_LAKE_URI"),
    ({"NEURON_EXECUTOR": "dask"}, "NEURON_EXECUTOR"),
    ({"NEURON_EXECUTOR": "celery"}, "NEURON_CELERY_BROKER"),
])
def test_a_bad_lake_uri_or_executor_is_one_clear_error(env: dict, message: str):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_the_lake_is_chosen_by_its_uri(tmp_path: Path):
    from kernel.lake import Lake, open_lake
    from kernel.object_lake import ObjectLake

    assert isinstance(open_lake(load_settings({}, data_dir=tmp_path)), Lake)
    lake = open_lake(load_settings({"NEURON_LAKE_URI": "s3://bucket/district/"}))
    assert isinstance(lake, ObjectLake) and lake.location == "s3://bucket/district"
    assert lake.cache_dir is not None  # reads go through this host's cache of committed files


def test_the_tokenizer_comes_from_settings_and_production_needs_a_real_key():
    assert load_settings({}).mode == "production"
    with pytest.raises(TokenKeyError, match="NEURON_TOKEN_KEY"):
        Tokenizer.from_settings(load_settings({}))
    with pytest.raises(TokenKeyError, match="public demo key"):
        Tokenizer.from_settings(load_settings({"NEURON_TOKEN_KEY": DEMO_KEY}))
    key = "a-production-key-of-sufficient-length"
    tok = Tokenizer.from_settings(load_settings({"NEURON_TOKEN_KEY": key, "NEURON_TOKEN_KEY_VERSION": "3"}))
    assert tok.version == 3 and tok.token("x", "card") == Tokenizer(key, 3).token("x", "card")
