from celery import shared_task

from . import executor


@shared_task(name="unlinking.run_step", acks_late=True)
def run_step(step_id: int) -> None:
    executor.execute_step(step_id)
