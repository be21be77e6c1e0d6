"""Reading Actionstep resources the way its REST API does: filters, sort, paging, includes.

Each resource declares its fields (name on the wire → SQL expression and kind), its relations
(what `links` holds and `include=` follows) and how a row renders.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from . import clock
from .web import BadRequest, money, to_cents


@dataclass(frozen=True)
class Field:
    sql: str
    kind: str = "text"  # text, int, money, date, timestamp


@dataclass(frozen=True)
class Resource:
    name: str
    render: Callable
    fields: dict[str, Field]
    relations: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (column, target)


_ts = clock.actionstep_timestamp


def _render_bill(r) -> dict:
    return {
        "id": r["id"],
        "status": r["status"],
        "ourReference": r["our_reference"],
        "theirReference": r["their_reference"],
        "currency": r["currency"],
        "invoiceDate": r["invoice_date"],
        "dueDate": r["due_date"],
        "totalExclusive": money(r["total_exclusive"]),
        "totalSalesTax": money(r["total_sales_tax"]),
        "totalInclusive": money(r["total_inclusive"]),
        "totalPaid": money(r["total_paid"]),
        "totalDue": money(r["total_inclusive"] - r["total_paid"]),
        "createdTimestamp": _ts(r["created"]),
        "modifiedTimestamp": _ts(r["modified"]),
        "deletedTimestamp": _ts(r["deleted"]),
        "links": {
            "division": r["division_id"],
            "action": [r["action_id"]],
            "theirParticipant": r["participant_id"],
        },
    }


def _render_payment(r) -> dict:
    return {
        "id": r["id"],
        "status": r["status"],
        "paymentDate": r["payment_date"],
        "amount": money(r["amount"]),
        "reference": r["reference"],
        "reason": r["reason"],
        "createdTimestamp": _ts(r["created"]),
        "modifiedTimestamp": _ts(r["modified"]),
        "links": {"bill": r["bill_id"]},
    }


def _render_invoice_link(r) -> dict:
    return {
        "id": r["id"],
        "linkStatus": r["link_status"],
        "xeroInvoiceId": r["xero_invoice_id"],
        "xeroInvoiceNumber": r["xero_invoice_number"],
        "linkedTimestamp": _ts(r["linked"]),
        "unlinkedTimestamp": _ts(r["unlinked"]),
        "modifiedTimestamp": _ts(r["modified"]),
        "links": {"bill": r["bill_id"]},
    }


def _render_payment_link(r) -> dict:
    return {
        "id": r["id"],
        "linkStatus": r["link_status"],
        "xeroPaymentId": r["xero_payment_id"],
        "linkedTimestamp": _ts(r["linked"]),
        "unlinkedTimestamp": _ts(r["unlinked"]),
        "modifiedTimestamp": _ts(r["modified"]),
        "links": {"billpayment": r["billpayment_id"], "bill": r["bill_id"]},
    }


def _render_action(r) -> dict:
    return {
        "id": r["id"],
        "name": r["name"],
        "reference": r["reference"],
        "modifiedTimestamp": _ts(r["modified"]),
    }


def _render_participant(r) -> dict:
    return {
        "id": r["id"],
        "displayName": r["display_name"],
        "modifiedTimestamp": _ts(r["modified"]),
    }


ID = Field("id", "int")
MODIFIED = Field("modified", "timestamp")
LINK_FIELDS = {
    "id": ID,
    "linkStatus": Field("link_status"),
    "linkedTimestamp": Field("linked", "timestamp"),
    "unlinkedTimestamp": Field("unlinked", "timestamp"),
    "modifiedTimestamp": MODIFIED,
    "bill": Field("bill_id", "int"),
}

RESOURCES = {
    resource.name: resource
    for resource in (
        Resource(
            "bills",
            _render_bill,
            {
                "id": ID,
                "status": Field("status"),
                "ourReference": Field("our_reference"),
                "theirReference": Field("their_reference"),
                "currency": Field("currency"),
                "invoiceDate": Field("invoice_date", "date"),
                "dueDate": Field("due_date", "date"),
                "totalExclusive": Field("total_exclusive", "money"),
                "totalSalesTax": Field("total_sales_tax", "money"),
                "totalInclusive": Field("total_inclusive", "money"),
                "totalPaid": Field("total_paid", "money"),
                "totalDue": Field("(total_inclusive - total_paid)", "money"),
                "createdTimestamp": Field("created", "timestamp"),
                "modifiedTimestamp": MODIFIED,
                "deletedTimestamp": Field("deleted", "timestamp"),
                "division": Field("division_id", "int"),
                "action": Field("action_id", "int"),
                "theirParticipant": Field("participant_id", "int"),
            },
            {
                "action": ("action_id", "actions"),
                "theirParticipant": ("participant_id", "participants"),
            },
        ),
        Resource(
            "billpayments",
            _render_payment,
            {
                "id": ID,
                "status": Field("status"),
                "paymentDate": Field("payment_date", "date"),
                "amount": Field("amount", "money"),
                "reference": Field("reference"),
                "reason": Field("reason"),
                "createdTimestamp": Field("created", "timestamp"),
                "modifiedTimestamp": MODIFIED,
                "bill": Field("bill_id", "int"),
            },
            {"bill": ("bill_id", "bills")},
        ),
        Resource(
            "xeroinvoicelinks",
            _render_invoice_link,
            {
                **LINK_FIELDS,
                "xeroInvoiceId": Field("xero_invoice_id"),
                "xeroInvoiceNumber": Field("xero_invoice_number"),
            },
            {"bill": ("bill_id", "bills")},
        ),
        Resource(
            "xeropaymentlinks",
            _render_payment_link,
            {
                **LINK_FIELDS,
                "xeroPaymentId": Field("xero_payment_id"),
                "billpayment": Field("billpayment_id", "int"),
            },
            {"billpayment": ("billpayment_id", "billpayments"), "bill": ("bill_id", "bills")},
        ),
        Resource(
            "actions",
            _render_action,
            {
                "id": ID,
                "name": Field("name"),
                "reference": Field("reference"),
                "modifiedTimestamp": MODIFIED,
            },
        ),
        Resource(
            "participants",
            _render_participant,
            {"id": ID, "displayName": Field("display_name"), "modifiedTimestamp": MODIFIED},
        ),
    )
}

OPERATORS = {"eq": "=", "nteq": "!=", "gt": ">", "lt": "<", "gte": ">=", "lte": "<="}
PAGING_PARAMS = ("page", "pageSize", "sort", "include")
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 50, 200


@dataclass
class Page:
    rows: list
    record_count: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return math.ceil(self.record_count / self.page_size)


def _value(field_: Field, raw: str):
    try:
        if field_.kind == "int":
            return int(raw)
        if field_.kind == "money":
            return to_cents(raw)
        if field_.kind == "timestamp":
            return clock.parse_actionstep_timestamp(raw)
        if field_.kind == "date":
            return clock.parse_date(raw)
    except ValueError:
        raise BadRequest(f"'{raw}' is not a valid {field_.kind}") from None
    return raw


def _where(resource: Resource, args: dict) -> tuple[list[str], list]:
    clauses, params = [], []
    for key, raw in args.items():
        if key in PAGING_PARAMS:
            continue
        name, _, op = key.rpartition("_")
        field_ = resource.fields.get(name)
        if field_ is None or (op not in OPERATORS and op != "ilike"):
            raise BadRequest(f"Unknown filter '{key}' for {resource.name}")
        if op == "ilike":
            if field_.kind != "text":
                raise BadRequest(f"'{key}': ilike applies to text fields only")
            pattern = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(f"{field_.sql} LIKE ? ESCAPE '\\'")
            params.append(pattern.replace("*", "%"))
        else:
            clauses.append(f"{field_.sql} {OPERATORS[op]} ?")
            params.append(_value(field_, raw))
    return clauses, params


def _order_by(resource: Resource, sort: str) -> str:
    terms = []
    for term in filter(None, (part.strip() for part in sort.split(","))):
        descending = term.startswith("-")
        field_ = resource.fields.get(term.lstrip("-"))
        if field_ is None:
            raise BadRequest(f"Cannot sort {resource.name} by '{term}'")
        terms.append(f"{field_.sql} {'DESC' if descending else 'ASC'}")
    return ", ".join([*terms, "id ASC"])  # ties are broken by id, so paging is stable


def _paging(args: dict) -> tuple[int, int]:
    try:
        page = int(args.get("page") or 1)
        size = int(args.get("pageSize") or PAGE_SIZE_DEFAULT)
    except ValueError:
        raise BadRequest("page and pageSize must be integers") from None
    if page < 1 or size < 1:
        raise BadRequest("page and pageSize start at 1")
    return page, min(size, PAGE_SIZE_MAX)


def find(store, resource: Resource, args: dict, firm_id: int | None, ids=None) -> Page:
    """One page of a resource, filtered and sorted; `firm_id` None reads every firm's records."""
    clauses, params = _where(resource, args)
    if firm_id is not None:
        clauses.insert(0, "firm_id = ?")
        params.insert(0, firm_id)
    if ids is not None:
        clauses.append(f"id IN ({', '.join('?' * len(ids))})")
        params.extend(ids)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    page, size = _paging(args)
    table, order = resource.name, _order_by(resource, args.get("sort", ""))
    count = store.count(f"SELECT COUNT(*) FROM {table} {where}", params)  # noqa: S608
    # The page's ids come from an index alone; only the 200 rows of the page are read whole,
    # however deep the page (a plain OFFSET would read every row it skips).
    page_ids = f"SELECT id FROM {table} {where} ORDER BY {order} LIMIT ? OFFSET ?"  # noqa: S608
    sql = f"SELECT * FROM {table} WHERE id IN ({page_ids}) ORDER BY {order}"  # noqa: S608
    rows = store.conn().execute(sql, [*params, size, (page - 1) * size]).fetchall()
    return Page(rows, count, page, size)


def side_load(conn, resource: Resource, rows: list, include: str) -> dict[str, list[dict]]:
    """The records `include=a,b.c` names, each resource's records once, in id order."""
    loaded: dict[str, dict[int, object]] = {}
    for path in filter(None, (part.strip() for part in include.split(","))):
        current, current_rows = resource, rows
        for segment in path.split("."):
            if segment not in current.relations:
                raise BadRequest(f"Cannot include '{path}' from {resource.name}")
            column, target = current.relations[segment]
            wanted = {row[column] for row in current_rows if row[column] is not None}
            have = loaded.setdefault(target, {})
            missing = sorted(wanted - have.keys())
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                sql = f"SELECT * FROM {target} WHERE id IN ({', '.join('?' * len(chunk))})"  # noqa: S608
                have.update((row["id"], row) for row in conn.execute(sql, chunk))
            current, current_rows = RESOURCES[target], [have[i] for i in wanted if i in have]
    return {
        name: [RESOURCES[name].render(records[i]) for i in sorted(records)]
        for name, records in loaded.items()
    }


def link_templates(resource: Resource, api_url: str) -> dict[str, str]:
    return {
        f"{resource.name}.{name}": f"{api_url}/rest/{target}/{{{resource.name}.{name}}}"
        for name, (_, target) in resource.relations.items()
    }
