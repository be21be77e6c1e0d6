"""The generated firms: deterministic, and consistent the way the integration leaves data."""

import pytest

from unlinker.sandbox.builder import FirmBuilder
from unlinker.sandbox.seed import CASES, seed
from unlinker.sandbox.store import DATA_TABLES, Store


def dump(store: Store) -> dict:
    conn = store.conn()
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
        for table in DATA_TABLES
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("seed") / "sandbox.sqlite3")
    return store, seed(store, invoices=2000, seed=3)


def rows(store: Store, sql: str, *params) -> list:
    return store.conn().execute(sql, params).fetchall()


def test_the_same_seed_gives_the_same_firm(tmp_path):
    first, second, other = (Store(tmp_path / f"{name}.sqlite3") for name in "abc")
    seed(first, invoices=300, seed=7)
    seed(second, invoices=300, seed=7)
    seed(other, invoices=300, seed=8)
    assert dump(first) == dump(second)
    assert dump(first)["xero_invoices"] != dump(other)["xero_invoices"]


def test_every_case_is_there(seeded):
    store, result = seeded
    assert result["invoices"] == 2000
    assert set(result["cases"]) == {*CASES, "ordinary"}
    assert all(count >= 1 for count in result["cases"].values())


def test_actionstep_totals_follow_the_active_payments(seeded):
    store, _ = seeded
    wrong = rows(
        store,
        """SELECT b.id FROM bills b LEFT JOIN billpayments p ON p.bill_id = b.id
           AND p.status = 'Active' GROUP BY b.id
           HAVING b.total_paid != COALESCE(SUM(p.amount), 0)
           OR (b.status = 'Closed') != (b.total_paid = b.total_inclusive AND b.total_paid > 0)
           OR b.total_inclusive != b.total_exclusive + b.total_sales_tax""",
    )
    assert wrong == []
    statuses = dict(rows(store, "SELECT status, COUNT(*) FROM bills GROUP BY 1"))
    assert statuses["Open"] > statuses["Closed"] > statuses["Draft"] > statuses["Deleted"] > 0


def test_links_exist_for_approved_bills_and_respect_the_order(seeded):
    store, result = seeded
    unlinked_approved = rows(
        store,
        """SELECT b.id FROM bills b LEFT JOIN xeroinvoicelinks l ON l.bill_id = b.id
           WHERE b.status IN ('Open', 'Closed') AND l.id IS NULL""",
    )
    assert unlinked_approved == []
    # No invoice was ever unlinked while one of its payments stayed linked.
    out_of_order = rows(
        store,
        """SELECT l.id FROM xeroinvoicelinks l JOIN xeropaymentlinks p ON p.bill_id = l.bill_id
           WHERE l.link_status = 'Unlinked' AND p.link_status = 'Linked'""",
    )
    assert out_of_order == []
    linked_removed = rows(
        store,
        """SELECT p.id FROM billpayments p JOIN xeropaymentlinks l ON l.billpayment_id = p.id
           WHERE p.status != 'Active' AND l.link_status = 'Linked'""",
    )
    assert linked_removed == []
    assert len(rows(store, "SELECT id FROM xeropaymentlinks WHERE link_status = 'Unlinked'")) >= (
        result["cases"]["payment_unlinked"] + result["cases"]["payment_removed"]
    )


def test_xero_copies_match_except_for_the_planted_differences(seeded):
    store, result = seeded
    cases = result["cases"]
    missing = rows(
        store,
        """SELECT l.id FROM xeroinvoicelinks l LEFT JOIN xero_invoices x
           ON x.id = l.xero_invoice_id WHERE x.id IS NULL""",
    )
    assert len(missing) == cases["missing_link"]
    broken = dict(
        rows(
            store,
            """SELECT x.status, COUNT(*) FROM xeroinvoicelinks l JOIN xero_invoices x
               ON x.id = l.xero_invoice_id WHERE l.link_status = 'Linked'
               AND x.status IN ('VOIDED', 'DELETED') GROUP BY 1""",
        )
    )
    assert broken == {"VOIDED": cases["voided_link"], "DELETED": cases["deleted_link"]}
    mismatched = rows(
        store,
        """SELECT b.id FROM bills b JOIN xeroinvoicelinks l ON l.bill_id = b.id
           JOIN xero_invoices x ON x.id = l.xero_invoice_id
           WHERE x.total != b.total_inclusive OR x.number != b.our_reference
           OR x.total_tax != b.total_sales_tax""",
    )
    assert len(mismatched) == cases["mismatch"]
    duplicated = rows(
        store,
        """SELECT number FROM xero_invoices WHERE status IN ('AUTHORISED', 'PAID')
           GROUP BY number HAVING COUNT(*) > 1""",
    )
    assert len(duplicated) == cases["duplicate"]
    orphans = rows(
        store,
        """SELECT l.id FROM xeroinvoicelinks l JOIN xero_invoices x ON x.id = l.xero_invoice_id
           WHERE l.link_status = 'Unlinked' AND x.status = 'AUTHORISED'""",
    )
    assert len(orphans) == cases["orphan"]


def test_xero_statuses_follow_the_xero_payments(seeded):
    store, _ = seeded
    wrong = rows(
        store,
        """SELECT x.id FROM xero_invoices x LEFT JOIN xero_payments p ON p.invoice_id = x.id
           AND p.status = 'AUTHORISED' GROUP BY x.id
           HAVING x.amount_paid != COALESCE(SUM(p.amount), 0)
           OR (x.status = 'PAID') != (x.amount_paid = x.total AND x.total > 0)
           OR (x.status NOT IN ('AUTHORISED', 'PAID') AND x.amount_paid > 0)""",
    )
    assert wrong == []
    statuses = {row[0] for row in rows(store, "SELECT DISTINCT status FROM xero_invoices")}
    assert statuses == {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"}
    batches = rows(
        store,
        """SELECT batch_payment_id FROM xero_payments WHERE batch_payment_id IS NOT NULL
           GROUP BY 1 HAVING COUNT(DISTINCT invoice_id) > 1""",
    )
    assert batches
    credited = rows(store, "SELECT id FROM xero_invoices WHERE amount_credited > 0")
    assert credited


def test_numbers_are_unique_in_actionstep_and_dates_precede_the_anchor(seeded):
    store, _ = seeded
    numbers = rows(store, "SELECT our_reference FROM bills GROUP BY 1 HAVING COUNT(*) > 1")
    assert numbers == []
    late = rows(
        store,
        """SELECT id FROM bills WHERE invoice_date > '2025-06-30' OR modified > ?
           OR created > modified""",
        1751266800,
    )
    assert late == []


def test_if_empty_and_a_second_firm(tmp_path):
    store = Store(tmp_path / "sandbox.sqlite3")
    first = seed(store, invoices=50)
    assert seed(store, invoices=50, if_empty=True) is None
    second = seed(store, invoices=50)
    assert second["firm"]["name"] == "Demo Law Firm 2"
    assert second["firm"]["tenantId"] != first["firm"]["tenantId"]
    assert len(rows(store, "SELECT id FROM bills")) == 100


def test_the_builder_refuses_impossible_firms(tmp_path):
    firm = FirmBuilder("Odd")
    with pytest.raises(ValueError, match="two decimals"):
        firm.add_bill("10.005")
    with pytest.raises(ValueError, match="unknown Xero status"):
        firm.add_bill("10.00", xero_status="PENDING")
    draft = firm.add_bill("10.00", xero_status="DRAFT")
    firm.add_payment(draft, "5.00", xero_status="AUTHORISED")
    with pytest.raises(ValueError, match="cannot carry payments"):
        firm.save(Store(tmp_path / "sandbox.sqlite3"))
