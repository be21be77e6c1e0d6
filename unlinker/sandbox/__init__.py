"""A stand-in for the Actionstep REST API and the Xero Accounting API (docs/api-contract.md).

A plain WSGI application over one SQLite file, independent of the Django project, served by
gunicorn with one worker process so that its in-memory counters (rate limits, faults,
idempotency keys) are shared by every request. `python -m unlinker.sandbox --help` runs it.
"""
