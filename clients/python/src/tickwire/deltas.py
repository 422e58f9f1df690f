"""Field-delta reconstruction (protocol v1.2 ``delta=1``), without any I/O.

With deltas the broker sends a quote of topic ``T`` with seq ``s`` as only
the fields that changed since quote ``s - 1`` when that is the quote *this
connection* received last for ``T``; every other quote (the first one on a
connection, a snapshot, the first of a rewind, one after a conflated or
throttled skip) comes in full. :class:`QuoteRebuilder` keeps, for one
connection, the last full quote of each topic and turns deltas back into
full quotes. A delta is applied only on top of a base with seq ``s - 1``:
anything else raises :class:`~tickwire.errors.MissingBaseError` rather than
building a quote from the wrong fields.
"""

from __future__ import annotations

from typing import Callable

from .errors import MissingBaseError
from .protocol import Delta, Quote

__all__ = ["QuoteRebuilder"]


class QuoteRebuilder:
    """Last full quote per topic of one connection; applies deltas to it.

    Feed it every quote the connection delivers, in order (:meth:`full` for
    full quotes, :meth:`apply` for deltas), including quotes the application
    will drop as stale: the broker bases its next delta on what it sent, not
    on what the application kept. Make a new one (or :meth:`clear`) for each
    connection.
    """

    def __init__(self) -> None:
        self.last: dict[str, Quote] = {}

    def full(self, q: Quote) -> None:
        """Records a full quote as the base of the next delta of its topic."""
        self.last[q.topic] = q

    def apply(self, d: Delta) -> Quote:
        """The full quote ``d`` stands for (recorded as the new base).

        Raises :class:`MissingBaseError` when the base is absent or not
        ``d.seq - 1``; the state is then left unchanged.
        """
        base = self.last.get(d.topic)
        if base is None or base.seq + 1 != d.seq:
            raise MissingBaseError(d.topic, d.seq, None if base is None else base.seq)
        q = d.apply(base)
        self.last[d.topic] = q
        return q

    def forget(self, drop: Callable[[str], bool]) -> None:
        """Forgets the topics for which ``drop(topic)`` is true."""
        for t in [t for t in self.last if drop(t)]:
            del self.last[t]

    def clear(self) -> None:
        self.last.clear()

    def __len__(self) -> int:
        return len(self.last)
