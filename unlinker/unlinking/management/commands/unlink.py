"""`manage.py unlink`: plan (and queue) an unlink from the command line, for admins who script."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from unlinker.connections.models import Connection
from unlinker.core.display import money_totals
from unlinker.unlinking import selectors, services, targets
from unlinker.unlinking.planning import (
    InvalidOptions,
    InvoiceAfter,
    PaymentRemoval,
    Plan,
    PlanOptions,
)


class Command(BaseCommand):
    help = (
        "Print the plan for unlinking the given invoices and payments (Actionstep ids) from "
        "Xero; without --dry-run, queue it as a batch."
    )

    def add_arguments(self, parser):
        parser.add_argument("--connection", required=True, help="Connection id or exact name")
        parser.add_argument(
            "--invoice", type=int, action="append", default=[], help="Actionstep bill id"
        )
        parser.add_argument(
            "--payment", type=int, action="append", default=[], help="Actionstep bill payment id"
        )
        parser.add_argument(
            "--remove-payments",
            choices=[PaymentRemoval.DELETE, PaymentRemoval.REVERSE],
            default=PaymentRemoval.NONE,
            help="then remove the invoices' payments in Actionstep",
        )
        parser.add_argument(
            "--after",
            choices=[InvoiceAfter.REVERT, InvoiceAfter.DELETE],
            default=InvoiceAfter.NONE,
            help="then revert the invoices to draft, or delete them, in Actionstep",
        )
        parser.add_argument(
            "--xero-cleanup",
            action="store_true",
            help="then delete the payments and void (or delete) the invoices in Xero",
        )
        parser.add_argument(
            "--remove-allocations",
            action="store_true",
            help="with --xero-cleanup: first remove the credit notes', prepayments' and "
            "overpayments' allocations to each invoice to void",
        )
        parser.add_argument(
            "--free-numbers",
            action="store_true",
            help="with --xero-cleanup: rename each Xero invoice as it is voided, so that "
            "approving it again in Actionstep can reuse its number",
        )
        parser.add_argument(
            "--user", help="queue as this user (recorded as who asked; their role applies)"
        )
        parser.add_argument("--dry-run", action="store_true", help="print the plan only")

    def handle(self, *args, **opts):
        connection = _connection(opts["connection"])
        user = _user(opts["user"]) if opts["user"] else None
        try:
            rows = selectors.rows_for_actionstep_ids(
                connection, invoice_ids=opts["invoice"], payment_ids=opts["payment"]
            )
        except selectors.InvalidSelection as exc:
            raise CommandError(str(exc)) from None
        try:
            options = PlanOptions(
                remove_payments=opts["remove_payments"],
                after=opts["after"],
                xero_cleanup=opts["xero_cleanup"],
                remove_allocations=opts["remove_allocations"],
                free_numbers=opts["free_numbers"],
            )
        except InvalidOptions as exc:
            raise CommandError(str(exc)) from None
        plan = rows.plan(options, busy=targets.holders(connection.pk))
        self.print_plan(plan)
        if opts["dry_run"]:
            self.stdout.write("Dry run: nothing was queued.")
            return
        selection = {
            "source": "command line",
            "connection_id": connection.pk,
            "invoice_actionstep_ids": opts["invoice"],
            "payment_actionstep_ids": opts["payment"],
        }
        try:
            # The plan printed is the plan queued: a change in between queues nothing.
            queued = services.create_batch(
                connection=connection,
                user=user,
                selection=selection,
                planner=lambda busy: rows.plan(options, busy=busy),
                expected_digest=plan.digest(),
            )
        except (services.NothingToQueue, services.PlanChanged, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        batch = queued.batch
        self.stdout.write(self.style.SUCCESS(f"Queued batch {batch.pk}: {batch.summary}"))

    def print_plan(self, plan: Plan) -> None:
        write = self.stdout.write
        write(f"Plan: {plan.summary()}")
        for count in plan.counts():
            write(f"  {count.label}: {count.planned} to run, {count.skipped} skipped")
        for step in plan.steps:
            marks = " [added]" if step.added_automatically else ""
            marks += f" [skipped: {step.skip_reason}]" if step.skipped else ""
            after = ""
            if step.depends_on:
                after = f" (after {', '.join(str(d + 1) for d in step.depends_on)})"
            write(f"{step.position + 1:>5}. {step.kind.label}: {step.target_label}{after}{marks}")
            for detail in step.details:
                write(f"         {detail}")
        for change in plan.xero_changes():
            total = money_totals(change.steps, amount="moved")
            write(f"In Xero: {change.label}: {len(change.steps)}, totalling {total}")
        calls = plan.xero_calls()
        if calls.most:
            write(f"Xero calls: {calls.least} to {calls.most}, {calls.notes} of them history notes")
        write(f"Stays in Xero: {len(plan.stays_in_xero)}")
        for leftover in plan.stays_in_xero:
            write(f"  {leftover.label} ({leftover.reason})")


def _connection(value: str) -> Connection:
    live = Connection.objects.filter(disconnected_at__isnull=True)
    matches = live.filter(pk=int(value)) if value.isdecimal() else live.filter(name=value)
    found = list(matches[:2])
    if len(found) != 1:
        problem = "is ambiguous" if found else "is not a live connection"
        raise CommandError(f"Connection {value!r} {problem}: give its id")
    return found[0]


def _user(username: str):
    try:
        return get_user_model().objects.get_by_natural_key(username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user {username!r}") from None
