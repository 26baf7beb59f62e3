"""Outside messages become ControlEvents on one thread-safe queue; nothing here waits on the show."""

from .events import ControlEvent, ControlQueue

__all__ = ["ControlEvent", "ControlQueue"]
