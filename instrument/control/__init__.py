"""Outside messages become ControlEvents on one thread-safe queue; nothing here waits on the show.

The event and its queue are ground (events.py), shared with the window's keys; they are named here
too, as the face of control."""

from ..events import ControlEvent, ControlQueue

__all__ = ["ControlEvent", "ControlQueue"]
