"""The Actionstep REST API under /actionstep/api/rest/: reads, and the writes of the
operations table in docs/api-contract.md (unlink, remove a payment, revert, delete, approve)."""

import re
import time

from . import clock, domain
from .actionstep_query import RESOURCES, find, link_templates, side_load
from .web import BadRequest, Response, clean_text, json_response

MEDIA_TYPE = "application/vnd.api+json"
PATH = re.compile(r"^/actionstep/api/rest/(?P<resource>[A-Za-z]+)(?:/(?P<ids>[0-9,]+))?/?$")
# What each resource lets a PUT change, besides echoing its own id.
WRITABLE = {
    "xeroinvoicelinks": {"linkStatus"},
    "xeropaymentlinks": {"linkStatus"},
    "billpayments": {"status", "reason"},
    "bills": {"status"},
}


def error(status: int, title: str, detail: str) -> Response:
    body = {"errors": [{"status": str(status), "title": title, "detail": detail}]}
    return json_response(body, status, MEDIA_TYPE)


def fault_response(status: int) -> Response:
    titles = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    return error(status, titles.get(status, "Error"), "Injected by the sandbox")


class ActionstepApi:
    def __init__(self, store, oauth, limiter):
        self.store, self.oauth, self.limiter = store, oauth, limiter

    def handle(self, req) -> Response:
        token, why = self.oauth.authenticate(req, "actionstep")
        if token is None:
            return error(401, "Unauthorized", f"The access token is {why}")
        if not self.limiter.admit():
            return error(429, "Too Many Requests", "API rate limit exceeded")
        time.sleep(self.limiter.limits.latency)
        accept = req.header("Accept", MEDIA_TYPE)
        if MEDIA_TYPE not in accept and "*/*" not in accept:
            return error(406, "Not Acceptable", f"Accept must allow {MEDIA_TYPE}")
        match = PATH.match(req.path)
        resource = RESOURCES.get(match["resource"]) if match else None
        if resource is None:
            return error(404, "Not Found", f"No resource at {req.path}")
        ids = [int(i) for i in match["ids"].split(",") if i] if match["ids"] else None
        if ids == []:
            return error(404, "Not Found", f"No record at {req.path}")
        firm_id = token["firm_id"]
        try:
            if req.method == "GET":
                return self.read(req, resource, firm_id, ids)
            if req.method == "PUT":
                return self.put(req, resource, firm_id, ids)
            if req.method == "DELETE":
                return self.delete(req, resource, firm_id, ids)
        except BadRequest as exc:
            return error(400, "Bad Request", str(exc))
        except domain.Refused as exc:
            return error(422, "Unprocessable Entity", exc.detail)
        return error(405, "Method Not Allowed", f"{req.method} is not supported on {req.path}")

    def read(self, req, resource, firm_id, ids) -> Response:
        page = find(self.store, resource, req.args, firm_id, ids)
        if not page.rows:
            if ids is not None and page.record_count == 0:
                return error(404, "Not Found", f"{resource.name} {','.join(map(str, ids))}")
            return Response(204)
        records = [resource.render(row) for row in page.rows]
        api_url = f"{req.base_url}/actionstep/api"
        body = {
            "links": link_templates(resource, api_url),
            # The real API answers a single match as an object: clients must take both.
            resource.name: records[0] if page.record_count == 1 else records,
        }
        if req.args.get("include"):
            body["linked"] = side_load(self.store.conn(), resource, page.rows, req.args["include"])
        has_next = page.page < page.page_count
        body["meta"] = {
            "paging": {
                resource.name: {
                    "recordCount": page.record_count,
                    "pageCount": page.page_count,
                    "page": page.page,
                    "pageSize": page.page_size,
                    "prevPage": req.url_with(page=page.page - 1) if page.page > 1 else None,
                    "nextPage": req.url_with(page=page.page + 1) if has_next else None,
                }
            }
        }
        return json_response(body, content_type=MEDIA_TYPE)

    def put(self, req, resource, firm_id, ids) -> Response:
        if resource.name not in WRITABLE:
            return error(405, "Method Not Allowed", f"{resource.name} cannot be changed")
        if not ids or len(ids) != 1:
            raise BadRequest("PUT changes one record: /rest/<resource>/<id>")
        if MEDIA_TYPE not in req.header("Content-Type"):
            return error(415, "Unsupported Media Type", f"Content-Type must be {MEDIA_TYPE}")
        body = req.json()
        changes = body.get(resource.name) if isinstance(body, dict) else None
        if not isinstance(changes, dict):
            raise BadRequest(f'The body must be {{"{resource.name}": {{...}}}}')
        if changes.get("id", ids[0]) != ids[0]:
            raise BadRequest("The body's id differs from the URL's")
        read_only = set(changes) - WRITABLE[resource.name] - {"id"}
        if read_only:
            raise BadRequest(f"Cannot change {', '.join(sorted(read_only))} on {resource.name}")
        with self.store.write() as conn:
            row = self._load(conn, resource, firm_id, ids[0])
            if row is None:
                return error(404, "Not Found", f"{resource.name} {ids[0]}")
            created = self._apply(conn, resource.name, row, changes, firm_id)
        if created:
            req.notes.setdefault("invoice_events", []).append((*created, "CREATE"))
        return self.read(req, resource, firm_id, ids)

    def _apply(self, conn, name: str, row, changes: dict, firm_id: int):
        """Make the change; (tenant, invoice id) when approving created a Xero invoice."""
        now = clock.now_s()
        if name in ("xeroinvoicelinks", "xeropaymentlinks"):
            wanted = changes.get("linkStatus", row["link_status"])
            if wanted == row["link_status"]:
                return None
            if wanted != domain.UNLINKED:
                raise domain.Refused(
                    "Only the Xero integration links records: approve the invoice again"
                )
            unlink = domain.unlink_invoice if name == "xeroinvoicelinks" else domain.unlink_payment
            unlink(conn, row, now)
        elif name == "billpayments":
            wanted = changes.get("status", row["status"])
            if wanted == row["status"]:
                return None
            if wanted != domain.REVERSED:
                raise domain.Refused(f"A payment cannot be set to {wanted}; DELETE deletes it")
            domain.remove_payment(conn, row, wanted, _reason(changes.get("reason")), now)
        else:
            wanted = changes.get("status", row["status"])
            if wanted == domain.DRAFT:
                domain.revert_to_draft(conn, row, now)
            elif wanted == domain.OPEN:
                tenant = conn.execute("SELECT tenant_id FROM firms WHERE id = ?", (firm_id,))
                tenant_id = tenant.fetchone()[0]
                invoice_id = domain.approve(conn, row, tenant_id, now)
                return (tenant_id, invoice_id) if invoice_id else None
            elif wanted != row["status"]:
                raise domain.Refused(f"An invoice cannot be set to {wanted} here")
        return None

    def delete(self, req, resource, firm_id, ids) -> Response:
        if resource.name not in ("bills", "billpayments"):
            return error(405, "Method Not Allowed", f"{resource.name} cannot be deleted")
        if not ids or len(ids) != 1:
            raise BadRequest("DELETE removes one record: /rest/<resource>/<id>")
        with self.store.write() as conn:
            row = self._load(conn, resource, firm_id, ids[0])
            if row is None:
                return error(404, "Not Found", f"{resource.name} {ids[0]}")
            if resource.name == "bills":
                domain.delete_bill(conn, row, clock.now_s())
            else:
                reason = _reason(req.args.get("reason"))
                domain.remove_payment(conn, row, domain.DELETED, reason, clock.now_s())
        return Response(204)

    @staticmethod
    def _load(conn, resource, firm_id: int, record_id: int):
        sql = f"SELECT * FROM {resource.name} WHERE id = ? AND firm_id = ?"  # noqa: S608
        return conn.execute(sql, (record_id, firm_id)).fetchone()


def _reason(value) -> str:
    reason = clean_text(value or "").strip()
    if not reason:
        raise BadRequest("A reason is required to remove a payment")
    return reason
