"""manage.py unlink"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from unlinker.mirror.models import LinkedInvoice
from unlinker.unlinking.models import StepKind, UnlinkBatch

from .factories import store_firm

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("unlink", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_prints_the_plan_and_queues_nothing(firm):
    inv = firm.invoices[0]
    out = run(
        "--connection", str(firm.connection.pk),
        "--invoice", str(inv.actionstep_id),
        "--remove-payments", "reverse",
        "--after", "revert",
        "--dry-run",
    )  # fmt: skip
    assert "Plan: 1 invoice · 4 steps · reverse payments · revert invoices" in out
    assert (
        "    1. Unlink payment from Xero: Payment RCPT-100 of AUD 50.00 on INV-000001 [added]"
        in out
    )
    assert (
        "    2. Unlink invoice from Xero: Invoice INV-000001 (Smith & Co), AUD 110.00 (after 1)"
        in out
    )
    assert "    3. Reverse payment in Actionstep: Payment RCPT-100" in out
    assert "    4. Revert invoice to draft in Actionstep: Invoice INV-000001" in out
    assert "(after 2, 3)" in out
    assert "Stays in Xero: 2" in out
    assert "Dry run: nothing was queued." in out
    assert not UnlinkBatch.objects.exists()


def test_without_dry_run_it_queues_and_prints_the_batch(firm, make_user):
    admin = make_user("ada", "admin")
    out = run(
        "--connection", firm.connection.name,
        "--invoice", str(firm.invoices[0].actionstep_id),
        "--payment", str(firm.payments[1].actionstep_id),
        "--xero-cleanup",
        "--user", "ada",
    )  # fmt: skip
    batch = UnlinkBatch.objects.get()
    assert f"Queued batch {batch.pk}: 1 invoice, 1 payment · 6 steps · Xero clean-up" in out
    assert "In Xero: Void invoice in Xero: 1, totalling AUD 110.00" in out
    assert batch.created_by == admin
    assert batch.selection == {
        "source": "command line",
        "connection_id": firm.connection.pk,
        "invoice_actionstep_ids": [firm.invoices[0].actionstep_id],
        "payment_actionstep_ids": [firm.payments[1].actionstep_id],
    }
    assert batch.steps.filter(kind=StepKind.XERO_DELETE_PAYMENT).count() == 2


def test_without_a_user_the_batch_is_recorded_as_from_the_command_line(firm):
    run("--connection", str(firm.connection.pk), "--invoice", str(firm.invoices[0].actionstep_id))
    assert UnlinkBatch.objects.get().created_by is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--invoice", "424242"], "Not in Smith Legal's linked lists: invoice 424242"),
        (["--payment", "1"], "payment 1"),
        ([], "Nothing is selected"),
        (["--invoice", "1001", "--user", "nobody"], "No user 'nobody'"),
    ],
)
def test_unknown_records_and_users_are_clear_errors(firm, args, message):
    with pytest.raises(CommandError, match=message):
        run("--connection", str(firm.connection.pk), *args)
    assert not UnlinkBatch.objects.exists()


def test_unknown_or_ambiguous_connections_are_clear_errors(firm):
    store_firm("Smith Legal", invoices=1)  # a second live connection of the same name
    with pytest.raises(CommandError, match="'Smith Legal' is ambiguous"):
        run("--connection", "Smith Legal", "--invoice", "1001")
    with pytest.raises(CommandError, match="'999' is not a live connection"):
        run("--connection", "999", "--invoice", "1001")


def test_the_users_role_applies(firm, make_user):
    make_user("olive", "operator")
    with pytest.raises(CommandError, match="needs the admin role"):
        run(
            "--connection", str(firm.connection.pk),
            "--invoice", "1001",
            "--xero-cleanup",
            "--user", "olive",
        )  # fmt: skip
    assert not UnlinkBatch.objects.exists()


def test_records_of_another_connection_are_unknown(firm):
    other = store_firm("Other Firm", invoices=1)
    LinkedInvoice.objects.filter(pk=other.invoices[0].pk).update(actionstep_id=77)
    with pytest.raises(CommandError, match="invoice 77"):
        run("--connection", str(firm.connection.pk), "--invoice", "77")
