"""A Python 3.11 workaround: a cancellation that an await swallowed, raised again."""

import asyncio


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that an await swallowed, or that a TaskGroup turned into errors.

    Python 3.11's `asyncio.wait_for`, which aiomqtt awaits inside `publish` and `subscribe`,
    can swallow a cancellation that races with its result (CPython gh-86296, fixed in 3.12);
    and a `TaskGroup` cancelled while a child fails reports the child's error, not the
    cancellation. Code that carries on after either calls this first.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
