"""Xero's identity API as xero-identity.yaml describes it: GET /Connections (also spelt
/connections), DELETE /Connections/{id}. The token endpoint and the revocation endpoint are
in oauth.py."""

import re

from . import clock
from .web import Response, json_response, text_response
from .xero import problem

PREFIX = re.compile(r"^/xero/api/connections(?:/(?P<id>[^/]+))?/?$", re.IGNORECASE)


class IdentityApi:
    def __init__(self, store, oauth):
        self.store, self.oauth = store, oauth

    def connections(self, req) -> Response:
        token, why = self.oauth.authenticate(req, "xero")
        if token is None:
            return problem(401, "Unauthorized", f"AuthenticationUnsuccessful: token {why}")
        match = PREFIX.match(req.path)
        if match is None:
            return text_response(f"Nothing at {req.path}", 404)
        if req.method == "GET" and match["id"] is None:
            return self._list(req, token)
        if req.method == "DELETE" and match["id"] is not None:
            return self._delete(token, match["id"].lower())
        return text_response("Method not allowed", 405)

    def _connected(self, conn, client_id: str):
        return conn.execute(
            """SELECT * FROM firms WHERE tenant_id NOT IN (
                   SELECT tenant_id FROM xero_disconnections WHERE client_id = ?)
               ORDER BY id""",
            (client_id,),
        ).fetchall()

    def _list(self, req, token) -> Response:
        firms = self._connected(self.store.conn(), token["client_id"])
        event = req.args.get("authEventId", "").strip().lower()
        return json_response(
            [
                {
                    "id": firm["connection_id"],
                    "authEventId": firm["connection_id"],
                    "tenantId": firm["tenant_id"],
                    "tenantType": "ORGANISATION",
                    "tenantName": firm["name"],
                    "createdDateUtc": clock.xero_connection_time(firm["created_ms"]),
                    "updatedDateUtc": clock.xero_connection_time(firm["created_ms"]),
                }
                for firm in firms
                if not event or firm["connection_id"] == event
            ]
        )

    def _delete(self, token, connection_id: str) -> Response:
        """Disconnect the app from one tenant: 204, or 404 for a connection it does not have."""
        with self.store.write() as conn:
            firm = next(
                (
                    f
                    for f in self._connected(conn, token["client_id"])
                    if f["connection_id"] == connection_id
                ),
                None,
            )
            if firm is None:
                return text_response("Resource not found", 404)
            conn.execute(
                "INSERT OR REPLACE INTO xero_disconnections (client_id, tenant_id, at) "
                "VALUES (?, ?, ?)",
                (token["client_id"], firm["tenant_id"], clock.now_s()),
            )
        return Response(204)
