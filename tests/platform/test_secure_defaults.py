"""Secure by default (issue 18): outside development and test, API, worker and `fupin run` refuse to start
with a public default or a short key, and say which setting and why."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fupin.settings import InsecureSettings, Settings, get_settings

STRONG = {
    "jwt_secret": "j" * 40,
    "bank_secret_key": "b" * 40,
    "audit_checkpoint_key": "a" * 40,
}


def production(**overrides: object) -> Settings:
    return Settings(environment="production", database_url="postgresql+asyncpg://u@127.0.0.1:1/x",
                    **{**STRONG, **overrides})


@pytest.mark.parametrize("name", sorted(STRONG))
def test_the_api_refuses_a_default_key_in_production_and_names_it(name):
    from fupin_api.main import create_app

    with pytest.raises(InsecureSettings) as err:
        create_app(production(**{name: Settings.model_fields[name].default}), connect_redis=False)
    message = str(err.value)
    assert f"FUPIN_{name.upper()}" in message
    assert "default" in message
    assert "FUPIN_ENVIRONMENT=production" in message


@pytest.mark.parametrize("name", sorted(STRONG))
def test_the_api_refuses_a_short_key_in_production(name):
    from fupin_api.main import create_app

    with pytest.raises(InsecureSettings, match=f"FUPIN_{name.upper()} is 31 bytes long; at least 32"):
        create_app(production(**{name: "s" * 31}), connect_redis=False)


def test_strong_keys_start_and_defaults_are_fine_in_development_and_test():
    from fupin_api.main import create_app

    assert create_app(production(), connect_redis=False) is not None
    for environment in ("development", "test"):
        assert create_app(Settings(environment=environment), connect_redis=False) is not None


async def test_the_worker_refuses_to_start_with_a_default_jwt_secret():
    from fupin_worker.main import startup

    ctx: dict[str, object] = {"settings": production(jwt_secret=Settings.model_fields["jwt_secret"].default)}
    with pytest.raises(InsecureSettings, match=r"the worker refuses to start.*FUPIN_JWT_SECRET"):
        await startup(ctx)
    assert "sessionmaker" not in ctx  # refused before connecting to anything


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("FUPIN_ENVIRONMENT", "production")
    monkeypatch.setenv("FUPIN_BANK_SECRET_KEY", "short")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_fupin_run_refuses_outside_development(production_env):
    from fupin.cli import app

    result = CliRunner().invoke(app, ["run", "--no-with-worker"])
    assert result.exit_code == 2
    assert "fupin run refuses to start" in result.output
    assert "FUPIN_BANK_SECRET_KEY is 5 bytes long" in result.output
