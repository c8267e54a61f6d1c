"""The HTTP API over small published snapshots (built like tests/test_serving.py, no refresh)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import warnings
from contextlib import contextmanager

import duckdb
import pytest

from pipeline import settings
from pipeline.api import snapshot
from pipeline.api.app import create_app
from pipeline.ingest import ImportConfig, run_import
from pipeline.publish import snapshot as published

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; httpx (pinned) still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CUSTOMERS = 37  # not a multiple of the page sizes used below
KEY = "test-key-0123456789abcdef"


def make_warehouse(path, customers=CUSTOMERS):
    """A warehouse with the marts the API reads, with the snapshot's column names and types."""
    conn = duckdb.connect(str(path))
    conn.execute("create schema if not exists marts")
    conn.execute(f"""
        create or replace table marts.customer_single_view as
        select printf('C%03d', i) as customer_code, 'E-Commerce' as platform, 'Direct' as channel,
            case when i % 2 = 0 then 'India' else 'USA' end as market, 'India' as sub_zone, 'APAC' as region,
            'Pune' as city, 'Engineer' as occupation, '25-34' as age_band, 'j***@x.com' as email_masked,
            true as has_orders, date '2026-01-01' as first_order_date, date '2026-01-01' + cast(i % 5 as integer) as last_order_date,
            cast(i % 4 + 1 as hugeint) as order_count, cast(i % 7 as bigint) as days_since_last_order,
            cast(i * 10.5 as decimal(38, 4)) as total_net_sales, cast(i * 3 as decimal(38, 4)) as total_gross_margin,
            10.0 as avg_order_net_sales, 3.0 as avg_order_gross_margin, cast(i % 4 as bigint) as frequency,
            cast(10 as bigint) as recency, cast(100 as bigint) as t, cast(1 as tinyint) as r_score,
            cast(2 as tinyint) as f_score, cast(3 as tinyint) as m_score, '123' as rfm_cell,
            case when i % 3 = 0 then 'Champions' else 'Lost' end as segment, i % 5 = 0 as is_pareto,
            'Notebook' as top_category, 0.5 as top_category_share, 'Reward' as suggested_action,
            0.9 as p_alive, 1.0 as expected_purchases_90d, 2.0 as expected_purchases_365d, 50.0 as expected_order_value,
            -- ties (i % 6) and nulls, to test the keyset
            case when i % 10 = 9 then null else (i % 6) * 100.0 end as clv_12m,
            case when i % 3 = 0 then 'high' else 'low' end as value_tier, cast(i % 2 as bigint) as cluster_id,
            'cluster' as cluster_name, 'Storage' as next_best_category, 0.3 as next_best_category_score,
            0.05 as suggested_discount_pct, 'tier' as discount_reason, date '2026-11-24' as as_of_date
        from range({customers}) t(i)
    """)
    conn.execute("""
        create or replace table marts.customer_segment_history as
        select d as as_of_date, customer_code, r_score, f_score, m_score, segment, is_pareto, order_count,
            days_since_last_order, total_net_sales, total_gross_margin, p_alive, clv_12m, value_tier,
            cluster_id, cluster_name
        from marts.customer_single_view, (values (date '2026-10-25'), (date '2026-11-09'), (date '2026-11-24')) v(d)
    """)
    conn.execute("""
        create or replace table marts.customer_segment_summary as
        select row_number() over (order by segment) as priority, segment, count(*) as customers,
            count(*) / 37.0 as customer_share, sum(total_net_sales) as net_sales, date '2026-11-24' as as_of_date
        from marts.customer_single_view group by segment
    """)
    conn.execute("""
        create or replace table marts.cluster_profiles as
        select d as as_of_date, cast(c as bigint) as cluster_id, 'cluster ' || c as name, 10 as customers,
            'Champions' as dominant_rfm_segment, 'secret' as not_exposed
        from (values (date '2026-11-09'), (date '2026-11-24')) v(d), range(2) r(c)
    """)
    conn.execute("""
        create or replace table marts.cltv_model_parameters as
        select * from (values (date '2026-11-09', 'bgnbd', 0.7), (date '2026-11-24', 'bgnbd', 0.8),
            (date '2026-11-24', 'gamma_gamma', 'NaN'::double)) t(as_of_date, model, r)
    """)
    conn.execute("""
        create or replace table marts.model_evaluation as
        select * from (values (date '2026-11-09', 'cltv', 'backtest', 'mae', 'bgnbd', 1.0),
            (date '2026-11-24', 'cltv', 'backtest', 'mae', 'bgnbd', 0.5)) t(as_of_date, model_family, evaluation, metric, model, value)
    """)
    return conn


def publish(conn, serve_dir, as_of="2026-11-24", run_id="run00001"):
    return published.publish(conn, serve_dir, dt.date.fromisoformat(as_of), run_id, "test")


def api_settings(root) -> settings.Settings:
    return settings.load(
        data_dir=root / "data",
        import_layout="transactions",
        source="files",
        import_dir=root / "import",
        import_column_order="order_id",
        api_key=KEY,
    )


@pytest.fixture(scope="module")
def published_once(tmp_path_factory):
    """A warehouse published once: each test's API starts from a copy of its files (the
    publish costs ~0.2 s of CPU, the copy a tenth of that; the snapshot link is relative)."""
    root = tmp_path_factory.mktemp("api-template")
    with make_warehouse(root / "warehouse.duckdb") as warehouse:
        first = publish(warehouse, api_settings(root).data_dir / "serve")
    return root, first


@contextmanager
def api_over_a_snapshot(root, published_once):
    """A copy of the warehouse published once under ``root``, and the API over it (with the
    write key)."""
    template, first = published_once
    shutil.copytree(template, root, symlinks=True, dirs_exist_ok=True)
    current = api_settings(root)
    warehouse = duckdb.connect(str(root / "warehouse.duckdb"))
    app = create_app(current)
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield {
            "client": client,
            "settings": current,
            "warehouse": warehouse,
            "first": first,
            "app": app,
        }
    app.state.pipeline.close()
    warehouse.close()


@pytest.fixture
def env(tmp_path, published_once):
    """An API of its own, for a test that writes or publishes."""
    with api_over_a_snapshot(tmp_path, published_once) as api:
        yield api


@pytest.fixture(scope="module")
def reader(tmp_path_factory, published_once):
    """One API for the tests that only read."""
    with api_over_a_snapshot(tmp_path_factory.mktemp("api"), published_once) as api:
        yield api


def test_health_and_snapshot_manifest(reader):
    client, first = reader["client"], reader["first"]
    assert client.get("/health").json() == {
        "status": "ok",
        "build_id": first.build_id,
        "as_of": "2026-11-24",
    }
    body = client.get("/snapshot").json()
    assert body["build_id"] == first.build_id and body["as_of"] == "2026-11-24"
    assert body["built_at"] == first.built_at
    assert body["row_counts"]["customer_single_view"] == CUSTOMERS


def test_no_snapshot_yet_is_503(tmp_path):
    app = create_app(settings.load(data_dir=tmp_path / "empty"))
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 503 and "no snapshot" in response.json()["detail"]
    assert response.json()["build_id"] is None and response.json()["as_of"] is None


def test_one_customer_with_its_history_and_only_the_listed_columns(reader):
    response = reader["client"].get("/customers/C003")
    assert response.status_code == 200
    customer = response.json()["customer"]
    assert customer["customer_code"] == "C003" and customer["segment"] == "Champions"
    assert set(customer) - {"history"} <= set(snapshot.CUSTOMER_COLUMNS)
    assert "email_masked" not in customer and "customer" not in customer
    assert customer["total_net_sales"] == 31.5
    assert [h["as_of_date"] for h in customer["history"]] == [
        "2026-10-25",
        "2026-11-09",
        "2026-11-24",
    ]


def test_unknown_customer_is_404(reader):
    response = reader["client"].get("/customers/NOPE")
    assert response.status_code == 404 and "NOPE" in response.json()["detail"]
    assert (
        response.json()["build_id"] == reader["first"].build_id
        and response.json()["as_of"] == "2026-11-24"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=email", "sort='email' is not allowed"),
        ("sort=customer_code;drop table x", "is not allowed"),
        ("limit=0", "greater than or equal"),
        ("limit=501", "less than or equal"),
        ("min_clv=lots", "valid number"),
        ("cluster=x", "valid integer"),
        ("cursor=garbage", "cursor is not a cursor"),
    ],
)
def test_bad_parameters_are_422_with_a_message(reader, query, message):
    response = reader["client"].get(f"/customers?{query}")
    assert response.status_code == 422
    assert message in json.dumps(response.json())
    assert response.json()["build_id"] == reader["first"].build_id


def test_a_cursor_of_another_sort_is_refused(reader):
    first = reader["client"].get("/customers?sort=-clv_12m&limit=5").json()
    response = reader["client"].get(
        "/customers", params={"sort": "order_count", "cursor": first["next_cursor"]}
    )
    assert response.status_code == 422 and "sort='-clv_12m'" in response.json()["detail"]


def test_filters(reader):
    client = reader["client"]
    high = client.get("/customers?tier=high&limit=500").json()["items"]
    assert high and all(c["value_tier"] == "high" for c in high)
    assert len(high) == len([i for i in range(CUSTOMERS) if i % 3 == 0])
    india = client.get("/customers?market=India&segment=Champions&cluster=0&limit=500").json()[
        "items"
    ]
    assert {c["customer_code"] for c in india} == {
        f"C{i:03d}" for i in range(CUSTOMERS) if i % 6 == 0
    }
    rich = client.get("/customers?min_clv=300&limit=500").json()["items"]
    assert rich and all(c["clv_12m"] >= 300 for c in rich)
    assert client.get("/customers?segment=Nobody").json() == {
        **client.get("/customers?segment=Nobody").json(),
        "items": [],
        "next_cursor": None,
    }


def walk(client, sort, limit, **filters):
    codes, cursor, pages = [], None, 0
    while True:
        params = {"sort": sort, "limit": limit, **filters, **({"cursor": cursor} if cursor else {})}
        page = client.get("/customers", params=params).json()
        codes += [c["customer_code"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return codes, pages


@pytest.mark.parametrize("sort", sorted(snapshot.SORTS) + ["-" + s for s in sorted(snapshot.SORTS)])
def test_pages_have_no_duplicates_or_gaps_in_the_sort_order(reader, sort):
    client = reader["client"]
    everything = client.get("/customers", params={"sort": sort, "limit": 500}).json()["items"]
    assert len(everything) == CUSTOMERS
    codes, pages = walk(client, sort, 4)
    assert codes == [
        c["customer_code"] for c in everything
    ]  # same order, nothing twice, nothing left out
    assert pages == -(-CUSTOMERS // 4)


def test_pagination_with_a_filter(reader):
    codes, _ = walk(reader["client"], "-clv_12m", 3, tier="low")
    assert len(codes) == len(set(codes)) == len([i for i in range(CUSTOMERS) if i % 3 != 0])


def test_segments_clusters_model(reader):
    client = reader["client"]
    segments = client.get("/segments").json()["segments"]
    assert {s["segment"] for s in segments} == {"Champions", "Lost"}
    assert sum(s["customers"] for s in segments) == CUSTOMERS
    clusters = client.get("/clusters").json()["clusters"]
    assert [(c["as_of_date"], c["cluster_id"]) for c in clusters] == [
        ("2026-11-24", 0),
        ("2026-11-24", 1),
    ]
    assert "not_exposed" not in clusters[0]
    model = client.get("/model").json()
    assert [(p["model"], p["r"]) for p in model["parameters"]] == [
        ("bgnbd", 0.8),
        ("gamma_gamma", None),
    ]  # NaN -> null
    assert [e["value"] for e in model["evaluation"]] == [0.5]


def test_openapi_docs_list_every_endpoint(reader):
    paths = reader["client"].get("/openapi.json").json()["paths"]
    assert {
        "/health",
        "/snapshot",
        "/customers",
        "/customers/{code}",
        "/segments",
        "/clusters",
        "/model",
        "/transactions",
    } <= set(paths)
    assert reader["client"].get("/docs").status_code == 200


def test_a_new_snapshot_is_seen_without_restart_and_a_request_in_flight_keeps_its_own(env):
    client, warehouse, current = env["client"], env["warehouse"], env["settings"]
    store = env["app"].state.pipeline.store
    assert client.get("/health").json()["build_id"] == env["first"].build_id
    with store.reader() as in_flight:  # a request that started before the swap
        warehouse.execute("delete from marts.customer_single_view where customer_code = 'C000'")
        second = publish(
            warehouse, current.data_dir / "serve", as_of="2026-12-09", run_id="run00002"
        )
        assert client.get("/health").json()["build_id"] == second.build_id
        assert client.get("/snapshot").json()["as_of"] == "2026-12-09"
        assert client.get("/customers/C000").status_code == 404
        # the old snapshot still answers the request in flight
        assert in_flight.manifest.build_id == env["first"].build_id
        assert in_flight.cursor.execute(
            "select count(*) from marts.customer_single_view"
        ).fetchone() == (CUSTOMERS,)
    assert client.get("/customers/C001").status_code == 200


def test_publishes_while_reading_never_fail_a_request(env):
    client, warehouse, serve = env["client"], env["warehouse"], env["settings"].data_dir / "serve"
    seen = set()
    for i in range(6):  # more than the 3 builds kept: old ones are pruned under the reader
        publish(warehouse, serve, run_id=f"loop{i:04d}")
        for url in ("/health", "/customers?limit=3", "/segments"):
            response = client.get(url)
            assert response.status_code == 200, response.text
            seen.add(response.json()["build_id"])
    assert len(seen) == 6


# --- ingestion ---------------------------------------------------------------------------------

ROWS = [  # the fixture maps PIPELINE_IMPORT_COLUMN_ORDER=order_id: the order id is a key too
    {"customer_id": "K1", "order_date": "2026-11-20", "amount": 12.5, "order_id": "O1"},
    {
        "customer_id": "K1",
        "order_date": "2026-11-20",
        "amount": 12.5,
        "order_id": "O1",
    },  # exact_duplicate
    {
        "customer_id": "K2",
        "order_date": "2026-13-01",
        "amount": 1,
        "order_id": "O2",
    },  # unparseable_date
    {"customer_id": "K3", "order_date": "2026-11-01", "amount": "-1", "order_id": "O3"},  # negative
    {"customer_id": " ", "order_date": "2026-11-01", "amount": 1, "order_id": "O4"},  # missing_key
    {
        "customer_id": "K4",
        "order_date": "2027-01-01",
        "amount": 1,
        "order_id": "O5",
    },  # date_after_as_of
    {
        "customer_id": "K5",
        "order_date": "2026-11-01",
        "amount": "abc",
        "order_id": "O6",
    },  # non_numeric
    {"customer_id": 6, "order_date": "2026-11-02", "amount": "7", "order_id": 7},
    {"customer_id": "K,7", "order_date": "2026-11-03", "amount": 0.1, "order_id": "O8"},
]
EXPECTED = [
    None,
    "exact_duplicate",
    "unparseable_date",
    "negative",
    "missing_key",
    "date_after_as_of",
    "non_numeric",
    None,
    None,
]


def import_files(env):
    folder = env["settings"].imports.dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_rows_are_validated_like_the_file_import_and_written_as_one_file(env):
    response = env["client"].post("/transactions", json={"rows": ROWS})
    assert response.status_code == 201, response.text
    body = response.json()
    assert [r.get("reason") for r in body["rows"]] == EXPECTED
    assert [r["status"] for r in body["rows"]] == [
        "rejected" if e else "accepted" for e in EXPECTED
    ]
    assert (body["accepted"], body["rejected"]) == (3, 6)
    assert import_files(env) == [body["file"]]  # no temporary file left behind
    assert body["file"].startswith("transactions_api_") and body["file"].endswith(".csv")
    text = (env["settings"].imports.dir / body["file"]).read_text()
    assert text.splitlines() == [
        "customer_id,order_date,amount,order_id",
        "K1,2026-11-20,12.5,O1",
        "6,2026-11-02,7,7",
        '"K,7",2026-11-03,0.1,O8',
    ]


def test_the_written_file_is_loaded_by_the_real_file_import(env):
    env["client"].post("/transactions", json={"rows": ROWS})
    more = [{"customer_id": "K8", "order_date": "2026-11-04", "amount": 99.99, "order_id": "O9"}]
    assert env["client"].post("/transactions", json={"rows": more}).status_code == 201
    with duckdb.connect() as conn:
        report = run_import(conn, ImportConfig.from_settings(env["settings"]))
        lines = conn.execute(
            "select customer_code, sold_quantity from raw.order_lines order by 1"
        ).fetchall()
    assert len(report.new_files) == 2 and report.quarantined_rows == 0 and report.loaded_rows == 4
    assert lines == [("6", 700), ("K,7", 10), ("K1", 1250), ("K8", 9999)]


def test_an_idempotent_retry_returns_the_first_answer_and_writes_nothing(env):
    client = env["client"]
    headers = {"Idempotency-Key": "batch-2026-11-20"}
    first = client.post("/transactions", json={"rows": ROWS}, headers=headers)
    files = import_files(env)
    retry = client.post("/transactions", json={"rows": ROWS}, headers=headers)
    assert retry.status_code == first.status_code == 201
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert import_files(env) == files and len(files) == 1
    other = client.post("/transactions", json={"rows": ROWS[:1]}, headers=headers)
    assert other.status_code == 409 and "different batch" in other.json()["detail"]
    assert import_files(env) == files
    fresh = client.post(
        "/transactions", json={"rows": ROWS}, headers={"Idempotency-Key": "another"}
    )
    assert fresh.status_code == 201 and len(import_files(env)) == 2


def test_a_retry_after_a_crash_before_the_key_was_recorded_finds_its_file(env):
    client = env["client"]
    headers = {"Idempotency-Key": "crashy"}
    first = client.post("/transactions", json={"rows": ROWS}, headers=headers).json()
    keys = env["settings"].data_dir / "api" / "idempotency"
    for record in keys.glob("*.json"):
        record.unlink()  # as if the process died between the data file and the key record
    again = client.post("/transactions", json={"rows": ROWS}, headers=headers).json()
    assert again["file"] == first["file"] and import_files(env) == [first["file"]]


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"rows": []}, 422, "at least 1"),
        (
            {
                "rows": [
                    {"customer_id": "K1", "order_date": "2026-11-20", "amount": 1, "colour": "red"}
                ]
            },
            422,
            "Extra inputs",
        ),
        (
            {
                "rows": [
                    {"customer_id": "K1", "order_date": "2026-11-20", "amount": 1, "product": "P1"}
                ]
            },
            422,
            "PIPELINE_IMPORT_COLUMN_PRODUCT is 'none'",
        ),
        (
            {
                "rows": [
                    {
                        "customer_id": "K1",
                        "order_date": "2026-11-20",
                        "amount": -1,
                        "order_id": "O1",
                    }
                ]
            },
            422,
            "every row was rejected",
        ),
        ([1, 2], 422, "valid dictionary"),
    ],
)
def test_a_batch_failing_as_a_whole_writes_nothing(env, payload, status, message):
    response = env["client"].post("/transactions", json=payload, headers={"Idempotency-Key": "k"})
    assert response.status_code == status and message in json.dumps(response.json())
    assert import_files(env) == []
    # nothing was recorded for the key either: the corrected batch may use it
    ok = env["client"].post(
        "/transactions", json={"rows": ROWS[:1]}, headers={"Idempotency-Key": "k"}
    )
    assert ok.status_code == 201


def test_malformed_json_writes_nothing(env):
    response = env["client"].post(
        "/transactions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and import_files(env) == []


def test_every_row_rejected_reports_each_reason(env):
    response = env["client"].post("/transactions", json={"rows": ROWS[2:7]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["accepted"] == 0 and [r["reason"] for r in detail["rows"]] == EXPECTED[2:7]


def test_ingestion_needs_the_transactions_layout(tmp_path):
    app = create_app(
        settings.load(import_dir=tmp_path / "import", api_key=KEY)
    )  # atliq layout by default
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        response = client.post("/transactions", json={"rows": ROWS[:1]})
    assert (
        response.status_code == 409
        and "PIPELINE_IMPORT_LAYOUT=transactions" in response.json()["detail"]
    )
    assert not (tmp_path / "import").exists()


# --- hardening (issue 17): API key, body-size limit, replies that never echo the input --------


def test_writes_need_the_api_key_compared_whole(env):
    client = env["client"]
    for headers in ({"X-API-Key": ""}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"}):
        response = client.post("/transactions", json={"rows": ROWS[:1]}, headers=headers)
        assert response.status_code == 401, headers
        assert (
            "X-API-Key" in response.json()["detail"]
            and response.json()["build_id"] == env["first"].build_id
        )
    without = TestClient(env["app"]).post("/transactions", json={"rows": ROWS[:1]})
    assert without.status_code == 401
    assert import_files(env) == []
    assert client.get("/health").status_code == 200  # reads need no key


def test_with_no_key_configured_writes_are_refused(tmp_path):
    current = settings.load(
        import_layout="transactions", source="files", import_dir=tmp_path / "import"
    )
    assert current.api.key is None  # the default
    with TestClient(create_app(current), headers={"X-API-Key": "anything-at-all-16"}) as client:
        response = client.post("/transactions", json={"rows": ROWS[:1]})
    assert response.status_code == 403 and "PIPELINE_API_KEY" in response.json()["detail"]
    assert not (tmp_path / "import").exists()


@pytest.fixture
def small_limit(env):
    """The env's API with a 2,000-byte body limit."""
    api = env["settings"].api.model_copy(update={"max_body_mb": 2000 / 1024 / 1024})
    app = create_app(dataclasses.replace(env["settings"], api=api))
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield client
    app.state.pipeline.close()


def test_a_body_over_the_limit_is_413_before_parsing(env, small_limit):
    body = json.dumps({"rows": ROWS * 20}).encode()
    assert len(body) > 2000
    response = small_limit.post(
        "/transactions", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and "2,000 bytes" in response.json()["detail"]
    assert response.json()["build_id"] == env["first"].build_id
    # not JSON at all: refused on its size, so it was never parsed
    garbage = small_limit.post(
        "/transactions", content=b"x" * 3000, headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 413
    assert import_files(env) == []
    # under the limit, the same API takes the rows
    assert small_limit.post("/transactions", json={"rows": ROWS[:2]}).status_code == 201


def test_a_streamed_body_without_length_is_cut_at_the_limit(env, small_limit):
    chunks = iter(
        [json.dumps({"rows": ROWS * 20}).encode()[i : i + 500] for i in range(0, 5000, 500)]
    )
    response = small_limit.post(
        "/transactions", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # chunked: only counting can catch it
    assert response.status_code == 413
    assert import_files(env) == []


def test_a_422_names_the_problem_without_echoing_the_input(env):
    secret = "PERSONAL-" + "x" * 5000
    response = env["client"].post(
        "/transactions",
        json={
            "rows": [
                {
                    "customer_id": "K1",
                    "order_date": "2026-11-20",
                    "amount": 1,
                    "order_id": "O1",
                    "colour": secret,
                },
                {
                    "customer_id": "K2",
                    "order_date": "2026-11-20",
                    "amount": {"nested": secret},
                    "order_id": "O2",
                },
            ]
        },
    )
    assert response.status_code == 422
    assert "PERSONAL" not in response.text and len(response.text) < 2000
    detail = response.json()["detail"]
    assert {
        "loc": ["body", "rows", 0, "colour"],
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    } in detail
    assert any(d["loc"][:4] == ["body", "rows", 1, "amount"] for d in detail)
    assert response.json()["build_id"] == env["first"].build_id
