"""`python -m pipeline.api` (what `make api` runs): serve the API on PIPELINE_API_HOST:PIPELINE_API_PORT
(127.0.0.1:8000 by default)."""

from __future__ import annotations

import sys

import uvicorn

from pipeline import settings


def main() -> int:
    try:
        current = settings.load()
    except settings.SettingsError as error:  # one line naming the variable, as the CLI does
        print(f"Settings error: {error}", file=sys.stderr)
        return 2
    if current.api.key is None:
        print(
            "PIPELINE_API_KEY is not set: reads only, POST /transactions is refused (403).",
            file=sys.stderr,
        )
    uvicorn.run("pipeline.api.app:app", host=current.api.host, port=current.api.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
