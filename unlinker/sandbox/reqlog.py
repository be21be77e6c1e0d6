"""The request log: every request the two APIs received, faulted ones included, with the status
answered, so that tests can assert exactly what was called and how often."""

import contextlib
import json
from datetime import UTC, datetime

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class RequestLog:
    def __init__(self, store):
        self.store = store

    def record(self, req, api: str, status: int | None, fault, started: float, seconds: float):
        body = req.body.decode("utf-8", "replace") if req.method in WRITE_METHODS else None
        with self.store.write(data=False) as conn:
            conn.execute(
                """INSERT INTO log.request_log (api, method, path, query, status, fault, replay,
                   acted, body, idempotency_key, client_id, tenant_id, at, duration_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    api,
                    req.method,
                    req.path,
                    req.query_string,
                    status,
                    None if fault is None else str(fault),
                    int(bool(req.notes.get("replay"))),
                    int(bool(req.notes.get("acted")) and not req.notes.get("replay")),
                    body,
                    req.header("Idempotency-Key") or None,
                    req.notes.get("client_id"),
                    req.notes.get("tenant_id"),
                    datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
                    round(seconds * 1000, 2),
                ),
            )

    def read(self, args: dict) -> list[dict]:
        """Filters: since (an id), api, method, path_contains, status, limit."""
        clauses, params = ["id > ?"], [int(args.get("since") or 0)]
        for name, sql in (("api", "api = ?"), ("method", "method = ?"), ("status", "status = ?")):
            if args.get(name):
                clauses.append(sql)
                params.append(args[name].upper() if name == "method" else args[name])
        if args.get("path_contains"):
            clauses.append("instr(path, ?) > 0")
            params.append(args["path_contains"])
        sql = f"SELECT * FROM log.request_log WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?"  # noqa: S608
        limit = int(args["limit"]) if args.get("limit") else -1  # -1: no limit
        rows = self.store.conn().execute(sql, [*params, limit])
        return [_entry(row) for row in rows]

    def last_id(self) -> int:
        return self.store.conn().execute("SELECT MAX(id) FROM log.request_log").fetchone()[0] or 0


def _entry(row) -> dict:
    entry = dict(row)
    entry["replay"] = bool(entry["replay"])
    entry["acted"] = bool(entry["acted"])
    if entry["body"]:
        with contextlib.suppress(ValueError):  # a form or a non-JSON body stays as sent
            entry["body"] = json.loads(entry["body"])
    return entry
