"""`python -m pipeline.api` (what `make api` runs): serve the API on PIPELINE_API_HOST:PIPELINE_API_PORT
(127.0.0.1:8000 by default)."""

from __future__ import annotations

import uvicorn

from pipeline import settings


def main() -> None:
    current = settings.load()
    uvicorn.run("pipeline.api.app:app", host=current.api_host, port=current.api_port)


if __name__ == "__main__":
    main()
