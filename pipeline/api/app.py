"""The HTTP API: thin routes over the published BI snapshot (pipeline.api.snapshot) and the
transactions drop (pipeline.api.ingest). Start it with ``make api`` (127.0.0.1:8000 by default);
OpenAPI docs at /docs.

Settings are read on the first request (not at import), like every run of the pipeline.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import settings as pipeline_settings
from pipeline.api import guard, ingest, snapshot

DESCRIPTION = """
Read-only access to the **published BI snapshot** (`<data_dir>/serve/current`, the marts without
personal data) and a drop for new **transactions** picked up by the next refresh.

Every read answers from the snapshot current when the request starts; a refresh that swaps in a
new snapshot is seen by the next request, without a restart. Unknown customers give 404, bad
parameters 422, no snapshot yet 503. Every reply, errors included, carries the `build_id` and
`as_of` of the snapshot served (null before the first publish).

Writes need the key of PIPELINE_API_KEY in the `X-API-Key` header (401 without it, 403 when no key
is configured). Request bodies above PIPELINE_API_MAX_BODY_MB (5 MiB) get 413 before any parsing.
"""

# Documents the header in /docs; the check itself is guard.write_refusal, run before the body is read.
API_KEY_HEADER = APIKeyHeader(
    name=guard.API_KEY_HEADER,
    auto_error=False,
    description="PIPELINE_API_KEY; needed by POST /transactions",
)


class _State:
    def __init__(self, settings: pipeline_settings.Settings | None):
        self._settings = settings
        self._lock = threading.Lock()
        self._store: snapshot.SnapshotStore | None = None
        self._ingestor: ingest.Ingestor | None = None

    @property
    def settings(self) -> pipeline_settings.Settings:
        self._ready()
        return self._settings

    def _ready(self) -> None:
        with self._lock:
            if self._store is None:
                s = self._settings or pipeline_settings.load()
                self._settings = s
                self._store = snapshot.SnapshotStore(s.paths.serve)
                self._ingestor = ingest.Ingestor(s)

    @property
    def store(self) -> snapshot.SnapshotStore:
        self._ready()
        return self._store

    @property
    def ingestor(self) -> ingest.Ingestor:
        self._ready()
        return self._ingestor

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def current_meta(self) -> dict[str, Any]:
        """build_id and as_of of the snapshot being served now (nulls before the first publish)."""
        try:
            with self.store.reader() as reader:
                return {"build_id": reader.manifest.build_id, "as_of": reader.manifest.as_of}
        except snapshot.SnapshotUnavailable:
            return {"build_id": None, "as_of": None}


def create_app(settings: pipeline_settings.Settings | None = None) -> FastAPI:
    app = FastAPI(title="Customer analytics API", version="1.0.0", description=DESCRIPTION)
    state = _State(settings)
    app.state.pipeline = state
    # outermost: refuses oversized bodies and unauthorised writes before FastAPI reads anything
    app.add_middleware(guard.Guard, state=state)

    def error_reply(
        request: Request, status: int, detail: Any, headers: dict | None = None
    ) -> JSONResponse:
        meta_now = getattr(request.state, "snapshot_meta", None) or state.current_meta()
        return JSONResponse({"detail": detail, **meta_now}, status_code=status, headers=headers)

    @app.exception_handler(snapshot.SnapshotUnavailable)
    def _no_snapshot(request: Request, error: snapshot.SnapshotUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error), "build_id": None, "as_of": None}, status_code=503
        )

    @app.exception_handler(snapshot.BadRequest)
    def _bad_request(request: Request, error: snapshot.BadRequest) -> JSONResponse:
        return error_reply(request, 422, str(error))

    @app.exception_handler(ingest.IngestError)
    def _ingest_error(request: Request, error: ingest.IngestError) -> JSONResponse:
        return error_reply(request, error.status, error.detail)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_reply(
            request, error.status_code, error.detail, getattr(error, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_reply(request, 422, guard.describe_validation_errors(error.errors()))

    def meta(reader: snapshot.Reader, request: Request | None = None) -> dict[str, Any]:
        found = {"build_id": reader.manifest.build_id, "as_of": reader.manifest.as_of}
        if request is not None:
            request.state.snapshot_meta = found
        return found

    @app.get(
        "/health",
        tags=["snapshot"],
        summary="Liveness and the snapshot being served",
        responses={503: {"description": "No snapshot published yet"}},
    )
    def health() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/health` -> `{"status": "ok", "build_id": "...", "as_of": "2026-11-24"}`"""
        with state.store.reader() as reader:
            return {"status": "ok", **meta(reader)}

    @app.get(
        "/snapshot",
        tags=["snapshot"],
        summary="The snapshot's manifest: as-of date, build time, row counts",
    )
    def get_snapshot() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/snapshot`"""
        with state.store.reader() as reader:
            m = reader.manifest
            return {
                "build_id": m.build_id,
                "as_of": m.as_of,
                "built_at": m.built_at,
                "code_version": m.code_version,
                "row_counts": m.row_counts,
            }

    @app.get(
        "/customers/{code}",
        tags=["customers"],
        summary="One customer's single view and per-refresh history",
        responses={404: {"description": "Unknown customer code"}},
    )
    def get_customer(
        request: Request, code: Annotated[str, Path(max_length=100, examples=["90200000003"])]
    ) -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/customers/90200000003`: the BI-safe columns of
        `marts.customer_single_view` (no name, email or date of birth) and `history`, one row per
        refresh from `marts.customer_segment_history`."""
        with state.store.reader() as reader:
            meta(reader, request)
            found = snapshot.customer(reader, code)
            if found is None:
                raise HTTPException(
                    404, f"no customer {code!r} in the snapshot as of {reader.manifest.as_of}"
                )
            return {**meta(reader), "customer": found}

    @app.get("/customers", tags=["customers"], summary="Customers, filtered, keyset-paginated")
    def list_customers(
        request: Request,
        segment: Annotated[
            str | None, Query(description="RFM segment", examples=["Champions"])
        ] = None,
        tier: Annotated[
            str | None, Query(description="CLV value tier: high, medium, low", examples=["high"])
        ] = None,
        cluster: Annotated[int | None, Query(description="Cluster id")] = None,
        market: Annotated[str | None, Query(examples=["India"])] = None,
        min_clv: Annotated[float | None, Query(description="Smallest 12-month CLV")] = None,
        sort: Annotated[
            str,
            Query(
                description="One of "
                + ", ".join(sorted(snapshot.SORTS))
                + "; prefix '-' for descending",
                examples=["-clv_12m"],
            ),
        ] = "customer_code",
        limit: Annotated[int, Query(ge=1, le=snapshot.MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> dict[str, Any]:
        """`curl 'http://127.0.0.1:8000/customers?tier=high&sort=-clv_12m&limit=20'`, then pass the
        answer's `next_cursor` as `cursor` (same filters and sort) for the next page; `next_cursor`
        is null on the last page. Ties are broken by customer_code, nulls sort last."""
        with state.store.reader() as reader:
            meta(reader, request)
            page = snapshot.list_customers(
                reader,
                segment=segment,
                tier=tier,
                cluster=cluster,
                market=market,
                min_clv=min_clv,
                sort=sort,
                limit=limit,
                cursor=cursor,
            )
            return {**meta(reader), **page}

    @app.get(
        "/segments",
        tags=["summaries"],
        summary="RFM segment summary (marts.customer_segment_summary)",
    )
    def get_segments() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/segments`"""
        with state.store.reader() as reader:
            return {**meta(reader), "segments": snapshot.segments(reader)}

    @app.get("/clusters", tags=["summaries"], summary="Cluster profiles of the latest as-of date")
    def get_clusters() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/clusters`"""
        with state.store.reader() as reader:
            return {**meta(reader), "clusters": snapshot.clusters(reader)}

    @app.get(
        "/model", tags=["summaries"], summary="Latest CLTV model parameters and model evaluation"
    )
    def get_model() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/model`"""
        with state.store.reader() as reader:
            return {**meta(reader), **snapshot.model(reader)}

    @app.post(
        "/transactions",
        tags=["ingestion"],
        status_code=201,
        summary="Add orders (transactions layout) for the next refresh",
        responses={
            201: {
                "description": "Accepted rows written as a new file in the import folder; per-row results"
            },
            401: {"description": "Missing or wrong X-API-Key"},
            403: {"description": "Writes are disabled: PIPELINE_API_KEY is not set"},
            409: {
                "description": "Not configured for transactions files, or Idempotency-Key reused for another batch"
            },
            413: {
                "description": "Body larger than PIPELINE_API_MAX_BODY_MB (nothing read or written)"
            },
            422: {"description": "Malformed batch, or every row rejected (nothing written)"},
        },
        dependencies=[Security(API_KEY_HEADER)],
    )
    def post_transactions(
        batch: ingest.TransactionBatch,
        idempotency_key: Annotated[
            str | None, Header(description="Makes retries safe: a key lands once")
        ] = None,
    ) -> JSONResponse:
        """Each row is checked with the file import's rules; accepted rows are written as one new
        `transactions_api_*.csv` in PIPELINE_IMPORT_DIR, rejected rows are not written and come back
        with their reason. With an `Idempotency-Key`, a retry of the same batch returns the first
        answer (header `Idempotent-Replayed: true`) and writes nothing.

            curl -X POST http://127.0.0.1:8000/transactions -H 'Content-Type: application/json' \\
              -H "X-API-Key: $PIPELINE_API_KEY" -H 'Idempotency-Key: 2026-11-20-batch-1' \\
              -d '{"rows": [{"customer_id": "K0001", "order_date": "2026-11-20", "amount": 120.5}]}'
        """
        outcome = state.ingestor.submit(batch, idempotency_key)
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        return JSONResponse(
            {**outcome.body, **state.current_meta()}, status_code=outcome.status, headers=headers
        )

    return app


app = create_app()
