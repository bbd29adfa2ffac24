"""ASGI entry point for uvicorn: `uvicorn fupin_api.asgi:app`. The process's logging is set up here."""

from fupin import logs
from fupin.settings import get_settings
from fupin_api.main import create_app

_settings = get_settings()
logs.configure_logging(_settings.log_level, fmt=_settings.log_format)
app = create_app(_settings)
