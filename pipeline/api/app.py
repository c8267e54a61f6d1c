"""The HTTP API: thin routes over the published BI snapshot (pipeline.api.snapshot) and the
transactions drop (pipeline.api.ingest). Start it with ``make api`` (127.0.0.1:8000 by default);
OpenAPI docs at /docs.

Settings are read on the first request (not at import), like every run of the pipeline.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from pipeline import settings as pipeline_settings
from pipeline.api import ingest, snapshot

DESCRIPTION = """
Read-only access to the **published BI snapshot** (`<data_dir>/serve/current`, the marts without
personal data) and a drop for new **transactions** picked up by the next refresh.

Every read answers from the snapshot current when the request starts; a refresh that swaps in a
new snapshot is seen by the next request, without a restart. Unknown customers give 404, bad
parameters 422, no snapshot yet 503.
"""


class _State:
    def __init__(self, settings: pipeline_settings.Settings | None):
        self._settings = settings
        self._lock = threading.Lock()
        self._store: snapshot.SnapshotStore | None = None
        self._ingestor: ingest.Ingestor | None = None

    def _ready(self) -> None:
        with self._lock:
            if self._store is None:
                s = self._settings or pipeline_settings.load()
                self._settings = s
                self._store = snapshot.SnapshotStore(s.data_dir / "serve")
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


def create_app(settings: pipeline_settings.Settings | None = None) -> FastAPI:
    app = FastAPI(title="Customer analytics API", version="1.0.0", description=DESCRIPTION)
    state = _State(settings)
    app.state.pipeline = state

    @app.exception_handler(snapshot.SnapshotUnavailable)
    def _no_snapshot(request: Request, error: snapshot.SnapshotUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(snapshot.BadRequest)
    def _bad_request(request: Request, error: snapshot.BadRequest) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(ingest.IngestError)
    def _ingest_error(request: Request, error: ingest.IngestError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    def meta(reader: snapshot.Reader) -> dict[str, Any]:
        return {"build_id": reader.manifest.build_id, "as_of": reader.manifest.as_of}

    @app.get("/health", tags=["snapshot"], summary="Liveness and the snapshot being served",
             responses={503: {"description": "No snapshot published yet"}})
    def health() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/health` -> `{"status": "ok", "build_id": "...", "as_of": "2026-11-24"}`"""
        with state.store.reader() as reader:
            return {"status": "ok", **meta(reader)}

    @app.get("/snapshot", tags=["snapshot"], summary="The snapshot's manifest: as-of date, build time, row counts")
    def get_snapshot() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/snapshot`"""
        with state.store.reader() as reader:
            m = reader.manifest
            return {"build_id": m.build_id, "as_of": m.as_of, "built_at": m.built_at,
                    "code_version": m.code_version, "row_counts": m.row_counts}

    @app.get("/customers/{code}", tags=["customers"], summary="One customer's single view and per-refresh history",
             responses={404: {"description": "Unknown customer code"}})
    def get_customer(code: Annotated[str, Path(max_length=100, examples=["90200000003"])]) -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/customers/90200000003`: the BI-safe columns of
        `marts.customer_single_view` (no name, email or date of birth) and `history`, one row per
        refresh from `marts.customer_segment_history`."""
        with state.store.reader() as reader:
            found = snapshot.customer(reader, code)
            if found is None:
                raise HTTPException(404, f"no customer {code!r} in the snapshot as of {reader.manifest.as_of}")
            return {**meta(reader), "customer": found}

    @app.get("/customers", tags=["customers"], summary="Customers, filtered, keyset-paginated")
    def list_customers(
        segment: Annotated[str | None, Query(description="RFM segment", examples=["Champions"])] = None,
        tier: Annotated[str | None, Query(description="CLV value tier: high, medium, low", examples=["high"])] = None,
        cluster: Annotated[int | None, Query(description="Cluster id")] = None,
        market: Annotated[str | None, Query(examples=["India"])] = None,
        min_clv: Annotated[float | None, Query(description="Smallest 12-month CLV")] = None,
        sort: Annotated[str, Query(description="One of " + ", ".join(sorted(snapshot.SORTS))
                                   + "; prefix '-' for descending", examples=["-clv_12m"])] = "customer_code",
        limit: Annotated[int, Query(ge=1, le=snapshot.MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> dict[str, Any]:
        """`curl 'http://127.0.0.1:8000/customers?tier=high&sort=-clv_12m&limit=20'`, then pass the
        answer's `next_cursor` as `cursor` (same filters and sort) for the next page; `next_cursor`
        is null on the last page. Ties are broken by customer_code, nulls sort last."""
        with state.store.reader() as reader:
            page = snapshot.list_customers(reader, segment=segment, tier=tier, cluster=cluster, market=market,
                                           min_clv=min_clv, sort=sort, limit=limit, cursor=cursor)
            return {**meta(reader), **page}

    @app.get("/segments", tags=["summaries"], summary="RFM segment summary (marts.customer_segment_summary)")
    def get_segments() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/segments`"""
        with state.store.reader() as reader:
            return {**meta(reader), "segments": snapshot.segments(reader)}

    @app.get("/clusters", tags=["summaries"], summary="Cluster profiles of the latest as-of date")
    def get_clusters() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/clusters`"""
        with state.store.reader() as reader:
            return {**meta(reader), "clusters": snapshot.clusters(reader)}

    @app.get("/model", tags=["summaries"], summary="Latest CLTV model parameters and model evaluation")
    def get_model() -> dict[str, Any]:
        """`curl http://127.0.0.1:8000/model`"""
        with state.store.reader() as reader:
            return {**meta(reader), **snapshot.model(reader)}

    @app.post(
        "/transactions", tags=["ingestion"], status_code=201,
        summary="Add orders (transactions layout) for the next refresh",
        responses={
            201: {"description": "Accepted rows written as a new file in the import folder; per-row results"},
            409: {"description": "Not configured for transactions files, or Idempotency-Key reused for another batch"},
            422: {"description": "Malformed batch, or every row rejected (nothing written)"},
        },
    )
    def post_transactions(
        batch: ingest.TransactionBatch,
        idempotency_key: Annotated[str | None, Header(description="Makes retries safe: a key lands once")] = None,
    ) -> JSONResponse:
        """Each row is checked with the file import's rules; accepted rows are written as one new
        `transactions_api_*.csv` in PIPELINE_IMPORT_DIR, rejected rows are not written and come back
        with their reason. With an `Idempotency-Key`, a retry of the same batch returns the first
        answer (header `Idempotent-Replayed: true`) and writes nothing.

            curl -X POST http://127.0.0.1:8000/transactions -H 'Content-Type: application/json' \\
              -H 'Idempotency-Key: 2026-11-20-batch-1' \\
              -d '{"rows": [{"customer_id": "K0001", "order_date": "2026-11-20", "amount": 120.5}]}'
        """
        outcome = state.ingestor.submit(batch, idempotency_key)
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)

    return app


app = create_app()
