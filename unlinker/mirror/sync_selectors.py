from .models import SyncRun


def sync_state(connection) -> dict:
    """The latest sync of a connection and whether one is under way."""
    run = SyncRun.objects.filter(connection=connection).first()
    active = run is not None and run.state in (SyncRun.State.QUEUED, SyncRun.State.RUNNING)
    return {"run": run, "active": active}
