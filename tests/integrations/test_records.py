"""Parsing of both APIs' JSON into records: dates, offsets, Decimal money, Actionstep's links."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from unlinker.integrations.records import (
    Bill,
    BillPayment,
    InvoiceLink,
    PaymentLink,
    XeroInvoice,
    XeroPayment,
    calendar_date,
    money,
    timestamp,
    xero_date,
    xero_datetime,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(1541176290160+0000)/", datetime(2018, 11, 2, 16, 31, 30, 160000, tzinfo=UTC)),
        ("/Date(1552326816230)/", datetime(2019, 3, 11, 17, 53, 36, 230000, tzinfo=UTC)),
        ("/Date(-86400000+0000)/", datetime(1969, 12, 31, tzinfo=UTC)),
        ("2018-11-02T16:36:32", datetime(2018, 11, 2, 16, 36, 32, tzinfo=UTC)),
    ],
)
def test_xero_datetime(raw, expected):
    assert xero_datetime(raw) == expected


def test_xero_datetime_keeps_a_non_zero_offset():
    parsed = xero_datetime("/Date(1552910400000+1300)/")
    assert parsed == datetime(2019, 3, 18, 12, 0, tzinfo=UTC)  # the same instant
    assert parsed.utcoffset() == timedelta(hours=13)
    assert parsed.date() == date(2019, 3, 19)  # the calendar day in that zone
    negative = xero_datetime("/Date(1552910400000-0530)/")
    assert negative.utcoffset() == -timedelta(hours=5, minutes=30)


def test_xero_date_is_the_day_in_the_values_zone():
    assert xero_date("/Date(1552953600000+0000)/") == date(2019, 3, 19)
    assert xero_date(None) is None


def test_actionstep_timestamps_and_dates():
    parsed = timestamp("2025-03-01T14:23:48+11:00")
    assert parsed == datetime(2025, 3, 1, 14, 23, 48, tzinfo=timezone(timedelta(hours=11)))
    assert timestamp("2025-03-01T14:23:48").tzinfo is not None  # read in the firm's zone
    assert calendar_date("2025-03-01") == date(2025, 3, 1)
    assert calendar_date("2025-03-01T00:00:00+11:00") == date(2025, 3, 1)
    assert timestamp("") is None and calendar_date(None) is None


def test_money_is_decimal_and_never_float():
    body = json.loads('{"a": 0.1, "b": 1234.50, "c": 7}', parse_float=Decimal)
    assert money(body["a"]) == Decimal("0.1") and isinstance(money(body["a"]), Decimal)
    assert str(money(body["b"])) == "1234.50"
    assert money(body["c"]) == Decimal(7)
    assert money("50.00") == Decimal("50.00")
    assert money(None) == Decimal("0.00")


def test_bill_from_actionstep():
    bill = Bill.from_json(
        json.loads(
            """{"id": 101, "status": "Open", "ourReference": "INV-000101",
                "theirReference": "PO 7", "currency": "AUD", "invoiceDate": "2025-03-01",
                "dueDate": "2025-03-31", "totalInclusive": 1100.10, "totalPaid": 100.00,
                "totalDue": 1000.10, "modifiedTimestamp": "2025-03-02T09:00:00+11:00",
                "deletedTimestamp": null,
                "links": {"action": ["12"], "theirParticipant": "34", "division": 1}}""",
            parse_float=Decimal,
        )
    )
    assert bill.number == "INV-000101" and bill.reference == "PO 7"
    assert bill.total == Decimal("1100.10") and bill.total_due == Decimal("1000.10")
    assert bill.matter_id == 12 and bill.contact_id == 34
    assert bill.invoice_date == date(2025, 3, 1) and bill.deleted_at is None


def test_link_and_payment_records():
    link = InvoiceLink.from_json(
        {
            "id": 5,
            "linkStatus": "Linked",
            "xeroInvoiceId": "abc",
            "xeroInvoiceNumber": "INV-1",
            "modifiedTimestamp": "2025-03-02T09:00:00+11:00",
            "links": {"bill": 101},
        }
    )
    assert (link.bill_id, link.link_status, link.xero_invoice_id) == (101, "Linked", "abc")
    payment_link = PaymentLink.from_json(
        {"id": 6, "linkStatus": "Unlinked", "links": {"billpayment": "77", "bill": "101"}}
    )
    assert (payment_link.bill_payment_id, payment_link.bill_id) == (77, 101)
    assert payment_link.modified_at is None
    payment = BillPayment.from_json(
        {
            "id": 77,
            "status": "Active",
            "paymentDate": "2025-03-05",
            "amount": Decimal("100.00"),
            "links": {"bill": 101},
        }
    )
    assert payment.bill_id == 101 and payment.amount == Decimal("100.00")


def test_xero_invoice_and_payment():
    invoice = XeroInvoice.from_json(
        json.loads(
            """{"InvoiceID": "i-1", "InvoiceNumber": "INV-1", "Type": "ACCREC",
                "Contact": {"ContactID": "c-1", "Name": "Smith"},
                "Date": "/Date(1552953600000+0000)/", "DueDate": "/Date(1555545600000+0000)/",
                "Status": "PAID", "Total": 148062.76, "AmountDue": 0.00,
                "AmountPaid": 148062.76, "AmountCredited": 0, "CurrencyCode": "AUD",
                "Payments": [{"PaymentID": "p-1", "Amount": 148062.76}],
                "UpdatedDateUTC": "/Date(1541176290160+0000)/"}""",
            parse_float=Decimal,
        )
    )
    assert invoice.total == Decimal("148062.76") and invoice.amount_credited == Decimal(0)
    assert invoice.contact_name == "Smith" and invoice.payment_ids == ("p-1",)
    assert invoice.date == date(2019, 3, 19)
    payment = XeroPayment.from_json(
        {
            "PaymentID": "p-1",
            "Amount": Decimal("46.00"),
            "Status": "AUTHORISED",
            "BatchPayment": {"BatchPaymentID": "b-1"},
            "Invoice": {"InvoiceID": "i-1"},
        }
    )
    assert payment.batch_payment_id == "b-1" and payment.invoice_id == "i-1"
