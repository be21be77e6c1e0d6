from celery import shared_task

from . import executor


@shared_task(name="unlinking.run_step", bind=True, acks_late=True)
def run_step(self, step_id: int) -> None:
    executor.execute_step(step_id, task_id=self.request.id or "")


@shared_task(name="unlinking.sweep")
def sweep() -> None:
    executor.sweep()
