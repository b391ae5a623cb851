"""The demo story's task, on the ``cpu`` queue. Thin: it calls one service."""

from celery import shared_task

from compliance.demo_story import RECHECK_SECONDS, demo_story_advance, demo_story_send
from compliance.queues import TaskName


@shared_task(name=TaskName.DEMO_STORY, acks_late=True)
def demo_story(**kwargs) -> dict:
    """Move the demo story on as far as it can go; look again shortly while a search is running."""
    result = demo_story_advance()
    if result["waiting"]:
        demo_story_send(countdown=RECHECK_SECONDS)
    return result
