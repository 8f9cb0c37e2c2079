"""Objects that hold a lock or a descriptor start afresh in a forked child.

A lock held by another thread of the parent at `fork` would never be released in the child, and a
descriptor the child inherits is shared with the parent (a `flock` on it is the parent's). An object
holding either registers itself here; in every child, each one still alive is told to start afresh.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class StartsAfresh(Protocol):
    def start_afresh(self) -> None:
        """Drop what was inherited from the parent: new locks, no descriptors."""


_REGISTERED: weakref.WeakSet[StartsAfresh] = weakref.WeakSet()


def start_afresh_in_children(owner: StartsAfresh) -> None:
    """Have `owner` start afresh in every process forked from now on (for as long as it lives)."""
    _REGISTERED.add(owner)


def _after_fork_in_child() -> None:
    for owner in list(_REGISTERED):
        owner.start_afresh()


os.register_at_fork(after_in_child=_after_fork_in_child)
