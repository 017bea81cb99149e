"""The live operator console: a read-only view of the fleet built only from the topics.

`view` folds events into state (pure), `render` draws that state with rich (pure), `watch`
subscribes and keeps the two going (I/O). Nothing here publishes.
"""

from cloud.monitor.render import render
from cloud.monitor.view import Batch, FleetView
from cloud.monitor.watch import watch

__all__ = ["Batch", "FleetView", "render", "watch"]
