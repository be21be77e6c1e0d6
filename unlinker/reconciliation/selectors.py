from .models import Finding, ReconciliationRun


def latest_run(connection) -> ReconciliationRun | None:
    return ReconciliationRun.objects.filter(connection=connection).first()


def latest_finished_run(connection) -> ReconciliationRun | None:
    return (
        ReconciliationRun.objects.filter(connection=connection, state=ReconciliationRun.State.DONE)
        .order_by("-finished_at")
        .first()
    )


def findings_of(run, kind: str | None = None):
    findings = Finding.objects.filter(run=run)
    if kind in Finding.Kind.values:
        findings = findings.filter(kind=kind)
    return findings
