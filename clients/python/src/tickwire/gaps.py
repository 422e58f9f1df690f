"""Epoch-aware ``seq`` gap tracking (no I/O, usable on its own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

__all__ = ["Gap", "GapTracker"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Quotes of ``topic`` that were not received: seqs ``expected .. received-1``."""

    topic: str
    expected: int
    received: int
    epoch: str | None

    @property
    def missed(self) -> int:
        return self.received - self.expected


class GapTracker:
    """Remembers the last ``seq`` seen per topic within one broker epoch.

    * The broker numbers each topic's quotes 1, 2, 3, ...; a jump means quotes
      in between were not delivered (conflation, ``max_hz``, or a reconnect
      whose resume did not recover the topic). A recovered resume replays
      ``last+1, last+2, ...``: no gap.
    * ``seq`` restarts when the broker's ``epoch`` changes (e.g. a restart):
      :meth:`set_epoch` with a new epoch forgets everything, so the restart
      is not reported as a gap.
    * A quote whose ``seq`` is not greater than the last one seen is *stale*
      (a snapshot repeating a quote already received): :meth:`is_stale`.

    Counters: ``gaps`` (number of gaps), ``missed`` (quotes missed in all),
    ``stale`` (stale quotes observed), ``epoch_changes``.
    """

    def __init__(self, epoch: str | None = None) -> None:
        self.epoch: str | None = epoch
        self.last_seq: dict[str, int] = {}
        self.gaps = 0
        self.missed = 0
        self.stale = 0
        self.epoch_changes = 0

    def set_epoch(self, epoch: str) -> bool:
        """Records the broker's epoch; returns True (and resets tracking) if it changed.

        The first epoch ever seen is not counted as a change.
        """
        if epoch == self.epoch:
            return False
        if self.epoch is not None:
            self.epoch_changes += 1
        self.epoch = epoch
        self.last_seq.clear()
        return True

    def is_stale(self, topic: str, seq: int) -> bool:
        last = self.last_seq.get(topic)
        return last is not None and seq <= last

    def observe(self, topic: str, seq: int) -> Gap | None:
        """Records ``seq`` for ``topic``; returns the :class:`Gap` before it, if any.

        The first quote of a topic (this epoch) is never a gap. A stale quote
        is counted in ``stale`` and leaves the tracking unchanged.
        """
        last = self.last_seq.get(topic)
        if last is not None and seq <= last:
            self.stale += 1
            return None
        self.last_seq[topic] = seq
        if last is None or seq == last + 1:
            return None
        gap = Gap(topic, last + 1, seq, self.epoch)
        self.gaps += 1
        self.missed += gap.missed
        return gap

    def forget(self, topics: Iterable[str] | Callable[[str], bool]) -> None:
        """Stops tracking some topics (e.g. after unsubscribing them)."""
        if callable(topics):
            drop = [t for t in self.last_seq if topics(t)]
        else:
            drop = list(topics)
        for t in drop:
            self.last_seq.pop(t, None)

    def reset(self, epoch: str | None = None) -> None:
        """Forgets every topic and sets ``epoch``; counters are kept."""
        self.epoch = epoch
        self.last_seq.clear()
