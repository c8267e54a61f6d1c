"""A small HTTP API over the published BI snapshot, plus a transactions drop for the file import.

app.py       thin FastAPI routes (OpenAPI docs at /docs)
guard.py     refuses oversized bodies (413) and writes without the API key, before reading them
snapshot.py  reads <data_dir>/serve/current read-only; follows snapshot swaps per request
ingest.py    POST /transactions: the import's own validation, durable file, idempotency keys
"""
