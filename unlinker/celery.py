import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "unlinker.settings")

app = Celery("unlinker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task=None, **_kwargs) -> None:
    """What Django does around each web request: drop this thread's connection if it broke or
    outlived CONN_MAX_AGE (the next query checks it first), keep it otherwise. Not for a task
    run eagerly, inside its caller's transaction."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return

    close_old_connections()
