"""Keep background threads out of the way of ``fork()``, so no forked child inherits a held lock.

A forked child gets a copy of every lock in the parent as it was at that instant, with only the
forking thread alive to release them. If another thread was inside an ``import`` (holding one of
the interpreter's per-module import locks), writing to a stream or talking to the database, the
child hangs the first time it needs that lock. That is how the demo's first training job hung:
the worker's heartbeat thread was importing torch when the prefork pool forked its child.

``fork_exclusive()`` is a section that ``os.fork()`` never cuts: fork handlers registered with
``os.register_at_fork`` take the same lock before every fork (Celery's pool, billiard, the
embedded beat, multiprocessing) and give it back afterwards. A thread that does all its work
inside the section, and only sleeps outside it, is therefore never caught holding anything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_FORK_LOCK = threading.Lock()


def _release_after_fork() -> None:
    _FORK_LOCK.release()


os.register_at_fork(
    before=_FORK_LOCK.acquire, after_in_parent=_release_after_fork, after_in_child=_release_after_fork
)


@contextmanager
def fork_exclusive() -> Iterator[None]:
    """Run the block with no ``fork()`` of this process in progress or starting until it ends.

    Never fork from inside the block (the fork would wait for the block: a deadlock), and keep
    it short: a fork in another thread waits for it.
    """
    with _FORK_LOCK:
        yield
