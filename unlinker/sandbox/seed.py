"""Generated demo firms: mostly ordinary invoices, plus a few of every case the product handles.

Ordinary invoices are approved (Open, or Closed once paid), carry 0-2 payments and are linked to
a Xero copy whose status follows the payments. Among them, a few of each: drafts never sent to
Xero, Xero copies in DRAFT or SUBMITTED, orphans (unlinked in Actionstep, still live in Xero),
invoices already cleaned up (unlinked and voided), links to voided, deleted or missing Xero
invoices, amounts that differ, duplicates (two live Xero invoices with one number), credit notes
allocated in Xero, payments unlinked or removed, deleted invoices and batch payments.

The same seed gives the same firm: names, amounts, dates, ids and GUIDs. Dates are laid out
before a fixed anchor (the end of an Australian financial year), not before today.
"""

import gc
import random
import time
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

from . import clock
from .builder import FirmBuilder

ANCHOR_TIME = datetime(2025, 6, 30, 17, 0, tzinfo=clock.ORG_TZ)
ANCHOR, ANCHOR_DAY = int(ANCHOR_TIME.timestamp()), ANCHOR_TIME.date()
# Share of the invoices that show each special case (at least one each from 40 invoices).
CASES = {
    "draft": 0.03,
    "xero_draft": 0.02,
    "orphan": 0.01,
    "cleaned_up": 0.01,
    "voided_link": 0.005,
    "deleted_link": 0.005,
    "missing_link": 0.005,
    "mismatch": 0.01,
    "duplicate": 0.005,
    "credited": 0.005,
    "payment_unlinked": 0.01,
    "payment_removed": 0.01,
    "deleted": 0.005,
}
BATCH_SHARE = 0.03  # of the fully paid invoices, whose first payment is part of a batch

GIVEN = "Olivia Liam Charlotte Noah Amelia Jack Isla William Mia Oliver Ava Henry Grace Leo"
FAMILY = "Nguyen Smith Jones Williams Brown Wilson Taylor Martin Anderson Thompson Walker White"
FIRMS = "Harbour Coastal Granite Summit Riverbend Southern Eucalypt Banksia Meridian Orchard"
FIRM_KINDS = ("Pty Ltd", "Holdings", "Group", "Trading Co", "Partners")
MATTERS = (
    "Conveyancing",
    "Estate administration",
    "Commercial lease",
    "Family law",
    "Employment dispute",
    "Debt recovery",
    "Business sale",
    "Wills and powers of attorney",
)
PAYMENT_REFERENCES = ("EFT", "BPAY", "Trust transfer", "Credit card", "Cheque")


def seed(
    store,
    invoices: int,
    seed: int = 42,
    payments_per_invoice=(0, 2),
    name: str = "Demo Law Firm",
    if_empty: bool = False,
) -> dict | None:
    """Add one generated firm; None when `if_empty` and the sandbox already has one."""
    if if_empty and not store.is_empty():
        return None
    started = time.perf_counter()
    ordinal = store.conn().execute("SELECT COUNT(*) FROM firms").fetchone()[0] + 1
    # The firm's ordinal joins the seed so that a second firm never repeats the first's GUIDs.
    rng = random.Random(f"{seed}/{ordinal}")  # noqa: S311 (demo data)
    taken = {row[0] for row in store.conn().execute("SELECT name FROM firms")}
    firm_name = f"{name} {ordinal}" if name in taken else name
    generator = _Generator(
        FirmBuilder(firm_name, rng=rng, anchor=ANCHOR), rng, payments_per_invoice
    )
    # Hundreds of thousands of small objects that all live to the end: the cyclic garbage
    # collector would only rescan them, again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        cases = generator.build(invoices)
        firm = generator.firm.save(store)
    finally:
        if collecting:
            gc.enable()
    bills = generator.firm.bills
    return {
        "firm": firm,
        "invoices": len(bills),
        "payments": sum(len(bill.payments) for bill in bills),
        "cases": dict(sorted(cases.items())),
        "seconds": round(time.perf_counter() - started, 3),
    }


class _Generator:
    def __init__(self, firm: FirmBuilder, rng: random.Random, payments_per_invoice):
        self.firm, self.rng = firm, rng
        low, high = payments_per_invoice
        self.payment_counts = list(range(low, high + 1))
        self.batch_number = self.batch_room = 0

    def build(self, invoices: int) -> Counter:
        rng = self.rng
        contacts = [
            self.firm.add_contact(self._contact_name()) for _ in range(max(5, invoices // 4))
        ]
        matters = [
            self.firm.add_matter(f"{client.name} - {rng.choice(MATTERS)}", client)
            for client in (rng.choice(contacts) for _ in range(max(5, invoices // 2)))
        ]
        cases = [
            case
            for case, share in CASES.items()
            for _ in range(max(1, round(invoices * share)) if invoices >= 40 else 0)
        ][:invoices]
        cases += ["ordinary"] * (invoices - len(cases))
        rng.shuffle(cases)
        days = sorted(ANCHOR_DAY - timedelta(rng.randint(5, 540)) for _ in cases)
        for case, day in zip(cases, days, strict=True):
            self._invoice(case, rng.choice(matters), day)
        return Counter(cases)

    def _batch(self) -> str:
        """The next paid invoices' payments fill batches of two or three."""
        if not self.batch_room:
            self.batch_number += 1
            self.batch_room = self.rng.choice((2, 3))
        self.batch_room -= 1
        return f"batch-{self.batch_number}"

    def _contact_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return f"{rng.choice(GIVEN.split())} {rng.choice(FAMILY.split())}"
        return f"{rng.choice(FIRMS.split())} {rng.choice(FIRM_KINDS)}"

    def _invoice(self, case: str, matter, day: date) -> None:
        rng, firm = self.rng, self.firm
        exclusive = rng.randint(2, 300) * 5000 + rng.choice((0, 0, 0, rng.randint(1, 4999)))
        tax = (exclusive + 5) // 10  # GST, rounded half up to the cent
        bill_args = {
            "tax": _amount(tax),
            "matter": matter,
            "invoice_date": day.isoformat(),
            "reference": f"Professional fees {day:%B %Y}",
        }
        bill = firm.add_bill(_amount(exclusive + tax), **bill_args, **self._case(case, exclusive))
        if case in ("ordinary", "duplicate", "payment_unlinked", "payment_removed"):
            self._payments(bill, case, day)

    def _case(self, case: str, exclusive: int) -> dict:
        """The add_bill options that make an invoice show its case."""
        rng = self.rng
        match case:
            case "draft":
                return {"status": "Draft"}
            case "xero_draft":
                return {"xero_status": rng.choice(("DRAFT", "SUBMITTED"))}
            case "orphan":
                return {"link": "Unlinked", "status": rng.choice(("Draft", "Open"))}
            case "cleaned_up":
                return {"link": "Unlinked", "status": "Draft", "xero_status": "VOIDED"}
            case "voided_link" | "deleted_link" | "missing_link":
                return {"xero_status": case.removesuffix("_link").upper()}
            case "mismatch":
                # One cent (rounding) or fifty dollars (edited in Xero, unseen by Actionstep).
                total = exclusive + (exclusive + 5) // 10
                return {"xero_total": _amount(total + rng.choice((1, -1, 5000)))}
            case "duplicate":
                return {"duplicate": True}
            case "credited":
                return {"amount_credited": _amount(rng.randint(1, exclusive // 100) * 100)}
            case "deleted":
                return {"link": "Unlinked", "status": "Deleted", "xero_status": "VOIDED"}
        return {}

    def _payments(self, bill, case: str, day: date) -> None:
        rng = self.rng
        count = rng.choices(self.payment_counts, [1 / (1 + n) for n in self.payment_counts])[0]
        if case != "ordinary":
            count = max(count, 1)
        if not count:
            return
        paid = bill.total if rng.random() < 0.55 else bill.total * rng.randint(20, 80) // 100
        batch = self._batch() if paid == bill.total and rng.random() < BATCH_SHARE else None
        amounts = _split(paid, count, rng)
        for index, amount in enumerate(amounts):
            options = {
                "date": min(day + timedelta(rng.randint(0, 60)), ANCHOR_DAY).isoformat(),
                "reference": f"{rng.choice(PAYMENT_REFERENCES)} {rng.randint(1000, 99999)}",
                "batch": batch if index == 0 else None,
            }
            last = index == len(amounts) - 1
            if case == "payment_unlinked" and last:
                options["link"] = "Unlinked"
            if case == "payment_removed" and last:
                options["status"] = rng.choice(("Reversed", "Deleted"))
                options["xero_status"] = rng.choice(("DELETED", "AUTHORISED"))
            self.firm.add_payment(bill, _amount(amount), **options)


def _amount(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    amounts = []
    for _ in range(parts - 1):
        amounts.append(total * rng.randint(30, 70) // 100)
        total -= amounts[-1]
    return [*amounts, total]
