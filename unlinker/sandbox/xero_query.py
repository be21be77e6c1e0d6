"""Reading Xero invoices and payments: the `where` and `order` subset, and the JSON shapes.

`where` takes comparisons (`==`, `!=`, `>`, `>=`, `<`, `<=`) of a field with a string, a number,
`true`/`false`, `null`, `Guid("...")` or `DateTime(y, m, d[, h, mi, s])`, the methods
`Contains`, `StartsWith`, `EndsWith` on text fields, `AND`/`&&`, `OR`/`||` and parentheses. A
query outside that subset is refused with Xero's QueryParseException.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from . import clock
from .web import money, to_cents


class QueryError(Exception):
    pass


@dataclass(frozen=True)
class Column:
    sql: str
    kind: str  # text, guid, money, date, datetime


INVOICE_COLUMNS = {
    "InvoiceID": Column("i.id", "guid"),
    "InvoiceNumber": Column("i.number", "text"),
    "Reference": Column("i.reference", "text"),
    "Type": Column("'ACCREC'", "text"),
    "Status": Column("i.status", "text"),
    "Contact.ContactID": Column("i.contact_id", "guid"),
    "Contact.Name": Column("i.contact_name", "text"),
    "Date": Column("i.date", "date"),
    "DueDate": Column("i.due_date", "date"),
    "SubTotal": Column("i.sub_total", "money"),
    "TotalTax": Column("i.total_tax", "money"),
    "Total": Column("i.total", "money"),
    "AmountDue": Column("(i.total - i.amount_paid - i.amount_credited)", "money"),
    "AmountPaid": Column("i.amount_paid", "money"),
    "AmountCredited": Column("i.amount_credited", "money"),
    "CurrencyCode": Column("i.currency", "text"),
    "FullyPaidOnDate": Column("i.fully_paid_on", "date"),
    "UpdatedDateUTC": Column("i.updated_ms", "datetime"),
}
PAYMENT_COLUMNS = {
    "PaymentID": Column("p.id", "guid"),
    "Status": Column("p.status", "text"),
    "PaymentType": Column("'ACCRECPAYMENT'", "text"),
    "Date": Column("p.date", "date"),
    "Amount": Column("p.amount", "money"),
    "Reference": Column("p.reference", "text"),
    "BatchPaymentID": Column("p.batch_payment_id", "guid"),
    "Invoice.InvoiceID": Column("p.invoice_id", "guid"),
    "Invoice.InvoiceNumber": Column("i.number", "text"),
    "Invoice.Contact.ContactID": Column("i.contact_id", "guid"),
    "UpdatedDateUTC": Column("p.updated_ms", "datetime"),
}

CREDIT_COLUMNS = {
    "Status": Column("c.status", "text"),
    "Reference": Column("c.reference", "text"),
    "Contact.ContactID": Column("c.contact_id", "guid"),
    "Contact.Name": Column("c.contact_name", "text"),
    "Date": Column("c.date", "date"),
    "Total": Column("c.total", "money"),
    "RemainingCredit": Column(
        "(c.total - (SELECT COALESCE(SUM(a.amount), 0) FROM xero_allocations a"
        " WHERE a.credit_id = c.id AND a.deleted_ms IS NULL))",
        "money",
    ),
    "CurrencyCode": Column("c.currency", "text"),
    "UpdatedDateUTC": Column("c.updated_ms", "datetime"),
}
# The id (and number) fields of each kind of credit, as Xero names them.
CREDIT_KINDS = {
    "CREDITNOTE": ("CreditNotes", "CreditNoteID", "ACCRECCREDIT"),
    "PREPAYMENT": ("Prepayments", "PrepaymentID", "RECEIVE-PREPAYMENT"),
    "OVERPAYMENT": ("Overpayments", "OverpaymentID", "RECEIVE-OVERPAYMENT"),
}
BATCH_COLUMNS = {
    "BatchPaymentID": Column("b.id", "guid"),
    "Status": Column("b.status", "text"),
    "Type": Column("'RECBATCH'", "text"),
    "Date": Column("b.date", "date"),
    "Reference": Column("b.reference", "text"),
    "TotalAmount": Column("b.total", "money"),
    "UpdatedDateUTC": Column("b.updated_ms", "datetime"),
}
BATCH_SELECT = """SELECT b.* FROM (SELECT batch_payment_id AS id, MIN(date) AS date,
    MIN(reference) AS reference, SUM(CASE WHEN status = 'AUTHORISED' THEN amount ELSE 0 END)
    AS total, CASE WHEN SUM(status = 'AUTHORISED') > 0 THEN 'AUTHORISED' ELSE 'DELETED' END
    AS status, MAX(updated_ms) AS updated_ms, MIN(seq) AS seq FROM xero_payments
    WHERE tenant_id = ? AND batch_payment_id IS NOT NULL GROUP BY batch_payment_id) b"""

_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|>=|<=|&&|\|\||[><(),])
    |(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""",
    re.VERBOSE,
)
_SQL_OPS = {"==": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_METHODS = {"Contains": "%{}%", "StartsWith": "{}%", "EndsWith": "%{}"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise QueryError(f"Cannot parse the where clause near '{text[position:][:20]}'")
        kind = match.lastgroup
        tokens.append((kind, match[kind]))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens, producing an SQL condition and its parameters."""

    def __init__(self, text: str, columns: dict[str, Column]):
        self.tokens, self.i, self.columns, self.params = _tokens(text), 0, columns, []

    def parse(self) -> tuple[str, list]:
        sql = self._or()
        if self.i != len(self.tokens):
            raise QueryError(f"Unexpected '{self.tokens[self.i][1]}' in the where clause")
        return sql, self.params

    def _peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def _take(self, value: str | None = None):
        kind, text = self._peek()
        if kind is None or (value is not None and text != value):
            raise QueryError(f"Expected '{value}' in the where clause")
        self.i += 1
        return kind, text

    def _or(self) -> str:
        parts = [self._and()]
        while self._peek()[1] in ("OR", "||", "or"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._factor()]
        while self._peek()[1] in ("AND", "&&", "and"):
            self.i += 1
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _factor(self) -> str:
        if self._peek()[1] == "(":
            self.i += 1
            sql = self._or()
            self._take(")")
            return f"({sql})"
        kind, word = self._take()
        if kind != "word":
            raise QueryError(f"Expected a field name, not '{word}'")
        name, _, method = word.rpartition(".")
        if method in _METHODS and name in self.columns:
            return self._method(self.columns[name], method)
        column = self.columns.get(word)
        if column is None:
            raise QueryError(f"No property or field '{word}' exists")
        op_kind, op = self._take()
        if op_kind != "op" or op not in _SQL_OPS:
            raise QueryError(f"Expected a comparison after '{word}'")
        value = self._value(column)
        if value is None:
            if op not in ("==", "!="):
                raise QueryError("null compares with == or != only")
            return f"{column.sql} IS {'NOT ' if op == '!=' else ''}NULL"
        self.params.append(value)
        collate = " COLLATE NOCASE" if column.kind == "text" else ""
        return f"{column.sql}{collate} {_SQL_OPS[op]} ?"

    def _method(self, column: Column, method: str) -> str:
        self._take("(")
        kind, text = self._take()
        self._take(")")
        if kind != "string" or column.kind != "text":
            raise QueryError(f"{method} takes a string, on a text field")
        literal = _unquote(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self.params.append(_METHODS[method].format(literal))
        return f"{column.sql} LIKE ? ESCAPE '\\'"

    def _value(self, column: Column):
        kind, text = self._take()
        if kind == "word" and text in ("Guid", "DateTime", "DateTimeOffset"):
            self._take("(")
            args = [self._take()[1]]
            while self._peek()[1] == ",":
                self.i += 1
                args.append(self._take()[1])
            self._take(")")
            if text == "Guid":
                return _unquote(args[0]).lower()
            return _datetime_value(column, args)
        if kind == "word" and text in ("null", "true", "false"):
            return {"null": None, "true": 1, "false": 0}[text]
        if kind == "string":
            value = _unquote(text)
            if column.kind == "datetime":
                return clock.parse_if_modified_since(value)
            return value.lower() if column.kind == "guid" else value
        if kind == "number" and column.kind == "money":
            try:
                return to_cents(text)
            except ValueError:
                raise QueryError(f"'{text}' is not an amount") from None
        raise QueryError(f"Cannot compare with '{text}'")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _datetime_value(column: Column, args: list[str]):
    try:
        moment = datetime(*(int(arg) for arg in args), tzinfo=UTC)
    except (TypeError, ValueError):
        raise QueryError("DateTime takes (year, month, day[, hour, minute, second])") from None
    if column.kind == "date":
        return moment.date().isoformat()
    if column.kind == "datetime":
        return int(moment.timestamp() * 1000)
    raise QueryError("DateTime compares with date fields only")


def where_sql(text: str, columns: dict[str, Column]) -> tuple[str, list]:
    return _Parser(text, columns).parse()


def order_sql(text: str, columns: dict[str, Column]) -> str:
    terms = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, direction = part.partition(" ")
        direction = direction.strip().upper() or "ASC"
        if name not in columns or direction not in ("ASC", "DESC"):
            raise QueryError(f"Cannot order by '{part}'")
        terms.append(f"{columns[name].sql} {direction}")
    return ", ".join(terms)


# --- JSON shapes (xero_accounting.yaml: Invoice, Payment) -------------------------------------


def _date_fields(prefix: str, iso_date: str | None) -> dict:
    if iso_date is None:
        return {}
    return {prefix: clock.xero_date(iso_date), f"{prefix}String": f"{iso_date}T00:00:00"}


def invoice_json(row, payments=None, *, line_items: bool = False, credits=None, unitdp=2) -> dict:
    """An Invoice; `payments` (rows of its live payments) is None for summaryOnly, `credits`
    (rows of its live allocations, see ALLOCATION_SELECT) with it."""
    invoice = {
        "Type": "ACCREC",
        "InvoiceID": row["id"],
        "InvoiceNumber": row["number"],
        "Reference": row["reference"],
        "AmountDue": money(row["total"] - row["amount_paid"] - row["amount_credited"]),
        "AmountPaid": money(row["amount_paid"]),
        "AmountCredited": money(row["amount_credited"]),
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": {"ContactID": row["contact_id"], "Name": row["contact_name"]},
        **_date_fields("Date", row["date"]),
        **_date_fields("DueDate", row["due_date"]),
        "Status": row["status"],
        "LineAmountTypes": "Exclusive",
        "SubTotal": money(row["sub_total"]),
        "TotalTax": money(row["total_tax"]),
        "Total": money(row["total"]),
        "UpdatedDateUTC": clock.xero_datetime(row["updated_ms"]),
        "UpdatedDateUTCString": clock.utc_iso(row["updated_ms"]),
        "CurrencyCode": row["currency"],
    }
    if row["fully_paid_on"]:
        invoice["FullyPaidOnDate"] = clock.xero_date(row["fully_paid_on"])
    if payments is not None:
        invoice["Payments"] = [
            {
                "PaymentID": p["id"],
                "Date": clock.xero_date(p["date"]),
                "Amount": money(p["amount"]),
                "Reference": p["reference"],
                "CurrencyRate": 1.0,
                "HasAccount": False,
                "HasValidationErrors": False,
            }
            for p in payments
        ]
        applied = {kind: [] for kind in CREDIT_KINDS}
        for allocation in credits or ():
            applied[allocation["kind"]].append(applied_credit_json(allocation))
        invoice.update(
            CreditNotes=applied["CREDITNOTE"],
            Prepayments=applied["PREPAYMENT"],
            Overpayments=applied["OVERPAYMENT"],
        )
    if line_items:
        invoice["LineItems"] = [
            {
                "Description": "Professional fees",
                "Quantity": 1.0,
                "UnitAmount": money(row["sub_total"], places=4 if unitdp == 4 else 2),
                "TaxType": "OUTPUT",
                "TaxAmount": money(row["total_tax"]),
                "LineAmount": money(row["sub_total"]),
                "AccountCode": "200",
                "Tracking": [],
            }
        ]
    return invoice


# An invoice's live allocations with their documents (one row per allocation).
ALLOCATION_SELECT = """SELECT a.id AS allocation_id, a.invoice_id, a.amount AS applied,
    a.date AS allocated_on, c.* FROM xero_allocations a JOIN xero_credits c ON c.id = a.credit_id
    WHERE a.deleted_ms IS NULL"""


def applied_credit_json(row) -> dict:
    """A credit note, prepayment or overpayment as an invoice lists what is applied to it."""
    _, id_field, document_type = CREDIT_KINDS[row["kind"]]
    document = {
        id_field: row["id"],
        "Type": document_type,
        "Date": clock.xero_date(row["allocated_on"]),
        "Status": row["status"],
        "Total": money(row["total"]),
        "AppliedAmount": money(row["applied"]),
        "CurrencyCode": row["currency"],
    }
    if row["kind"] == "CREDITNOTE":
        document["CreditNoteNumber"] = row["number"]
    return document


def credit_json(row, allocations) -> dict:
    """A credit note, prepayment or overpayment (GET /CreditNotes/{id} and the like) with its
    live allocations (rows of xero_allocations joined with their invoice's number)."""
    _, id_field, document_type = CREDIT_KINDS[row["kind"]]
    remaining = row["total"] - sum(a["amount"] for a in allocations)
    document = {
        "Type": document_type,
        "Contact": {"ContactID": row["contact_id"], "Name": row["contact_name"]},
        "Date": clock.xero_date(row["date"]),
        "Status": row["status"],
        "LineAmountTypes": "Exclusive",
        "SubTotal": money(row["total"] - row["total_tax"]),
        "TotalTax": money(row["total_tax"]),
        "Total": money(row["total"]),
        "UpdatedDateUTC": clock.xero_datetime(row["updated_ms"]),
        "UpdatedDateUTCString": clock.utc_iso(row["updated_ms"]),
        "CurrencyCode": row["currency"],
        id_field: row["id"],
        "CurrencyRate": 1.0,
        "RemainingCredit": money(remaining),
        "Allocations": [allocation_json(a) for a in allocations],
        "HasAttachments": False,
    }
    if row["kind"] == "CREDITNOTE":
        document.update(CreditNoteNumber=row["number"], Reference=row["reference"])
    elif row["kind"] == "OVERPAYMENT":
        document["Reference"] = row["reference"]
    return document


def allocation_json(row) -> dict:
    """An Allocation; `row` is an xero_allocations row with its invoice's number."""
    return {
        "AllocationID": row["id"],
        "Amount": money(row["amount"]),
        "Date": clock.xero_date(row["date"]),
        "Invoice": {"InvoiceID": row["invoice_id"], "InvoiceNumber": row["invoice_number"]},
        "IsDeleted": row["deleted_ms"] is not None,
    }


def history_json(row) -> dict:
    return {
        "Changes": row["changes"],
        "DateUTC": clock.xero_datetime(row["at_ms"]),
        "User": row["user"],
        "Details": row["details"],
    }


def organisation_json(org: dict, firm) -> dict:
    """An Organisation (GET /Organisation), from xero_organisations and the firm's row."""
    answer = {
        "OrganisationID": org["organisation_id"],
        "Name": firm["name"],
        "LegalName": firm["name"],
        "PaysTax": True,
        "Version": org["country_code"]
        if org["country_code"] in ("AU", "NZ", "UK", "US")
        else "GLOBAL",
        "OrganisationType": "COMPANY",
        "BaseCurrency": org["base_currency"],
        "CountryCode": org["country_code"],
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": 30,
        "FinancialYearEndMonth": 6,
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY1",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": clock.xero_envelope_time(firm["created_ms"]),
        "OrganisationEntityType": "COMPANY",
        "Timezone": org["timezone"],
        "ShortCode": org["short_code"],
        "Edition": "BUSINESS",
        "Class": "PREMIUM",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }
    # "Shown if set" (xero_accounting.yaml)
    if org["period_lock_date"]:
        answer["PeriodLockDate"] = clock.xero_date(org["period_lock_date"])
    if org["end_of_year_lock_date"]:
        answer["EndOfYearLockDate"] = clock.xero_date(org["end_of_year_lock_date"])
    return answer


def batch_payment_json(batch, payments) -> dict:
    """A BatchPayment (a row of BATCH_SELECT) with its payments (rows of PAYMENT_SELECT)."""
    return {
        "Account": {"AccountID": ACCOUNT_ID, "Code": "090"},
        "Reference": batch["reference"],
        "BatchPaymentID": batch["id"],
        "DateString": f"{batch['date']}T00:00:00",
        "Date": clock.xero_date(batch["date"]),
        "Payments": [
            {
                "PaymentID": p["id"],
                "Amount": money(p["amount"]),
                "Reference": p["reference"],
                "Status": p["status"],
                "Invoice": {
                    "InvoiceID": p["invoice_id"],
                    "InvoiceNumber": p["invoice_number"],
                    "Contact": {
                        "ContactID": p["invoice_contact_id"],
                        "Name": p["invoice_contact_name"],
                    },
                },
            }
            for p in payments
        ],
        "Type": "RECBATCH",
        "Status": batch["status"],
        "TotalAmount": money(batch["total"]),
        "UpdatedDateUTC": clock.xero_datetime(batch["updated_ms"]),
        "IsReconciled": False,
    }


VERSIONS = ("AU", "NZ", "UK", "US")
ACCOUNT_ID = "5690f1e8-1d02-4893-90c2-ee1a69eff942"


def payment_json(row) -> dict:
    """A Payment; `row` carries its invoice's columns as invoice_*."""
    payment = {
        "PaymentID": row["id"],
        "Date": clock.xero_date(row["date"]),
        "BankAmount": money(row["amount"]),
        "Amount": money(row["amount"]),
        "Reference": row["reference"],
        "CurrencyRate": 1.0,
        "PaymentType": "ACCRECPAYMENT",
        "Status": row["status"],
        "UpdatedDateUTC": clock.xero_datetime(row["updated_ms"]),
        "UpdatedDateUTCString": clock.utc_iso(row["updated_ms"]),
        "HasAccount": True,
        "IsReconciled": False,
        "Account": {"AccountID": ACCOUNT_ID, "Code": "090"},
        "Invoice": {
            "Type": "ACCREC",
            "InvoiceID": row["invoice_id"],
            "InvoiceNumber": row["invoice_number"],
            "Contact": {
                "ContactID": row["invoice_contact_id"],
                "Name": row["invoice_contact_name"],
            },
            "CurrencyCode": row["invoice_currency"],
        },
        "HasValidationErrors": False,
    }
    if row["batch_payment_id"]:
        payment["BatchPaymentID"] = row["batch_payment_id"]
    return payment


PAYMENT_SELECT = """SELECT p.*, i.number AS invoice_number, i.contact_id AS invoice_contact_id,
    i.contact_name AS invoice_contact_name, i.currency AS invoice_currency
    FROM xero_payments p JOIN xero_invoices i ON i.id = p.invoice_id"""
