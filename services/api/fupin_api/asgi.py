"""ASGI entry point for uvicorn: `uvicorn fupin_api.asgi:app`."""

from fupin_api.main import create_app

app = create_app()
