"""Resume without loss (protocol v1.2 ``since``), without any I/O.

After a reconnect the subscriber re-sends its subscriptions; with resume on,
each request carries the client's position for the exact topics its entries
cover::

    {"op":"subscribe","topics":["AAPL","FX.*"],"id":7,
     "since":{"epoch":"9f3b2c71a0d4e815","seqs":{"AAPL":1041,"FX.EURUSD":77}}}

The broker then sends, per topic in ``seqs``, exactly the quotes after that
``seq`` (no snapshot) when it still holds them (*recovered*), else the v1
snapshot (*unrecovered*, named in the ack's ``unrecovered``).

:func:`plan_resubscribe` turns the subscriptions (grouped by options) and the
last ``seq`` seen per topic into those requests, within the contract's limits:
every key of ``seqs`` is covered by an entry of its own request, at most
:data:`MAX_SINCE_KEYS` keys per request.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence, TypeVar

__all__ = ["Resume", "MAX_SINCE_KEYS", "MAX_REWIND", "covered_seqs", "plan_resubscribe"]

#: Most keys in one request's ``since.seqs``.
MAX_SINCE_KEYS = 1024
#: Largest ``rewind``.
MAX_REWIND = 1024
#: Size the client keeps a resubscribe request under (the broker's default
#: limit on a client message is 65,536 bytes).
MAX_REQUEST_BYTES = 60_000
_ID_ROOM = {"id": (1 << 53) - 1}


@dataclass(frozen=True, slots=True)
class Resume:
    """The outcome of one subscribe request that carried ``since`` (from its ack).

    ``topics``: the topics whose position was sent (``since.seqs``'s keys);
    ``recovered``: the ack's ``recovered`` (every one of them was recovered:
    the quotes after the position follow, no snapshot); ``unrecovered``: the
    topics the broker could not resume (a new epoch, history no longer
    reaching back): they got the v1 snapshot instead.
    """

    id: int | None
    epoch: str | None
    topics: list[str] = field(default_factory=list)
    recovered: bool = True
    unrecovered: list[str] = field(default_factory=list)

    @property
    def recovered_topics(self) -> list[str]:
        """``topics`` less ``unrecovered``."""
        lost = set(self.unrecovered)
        return [t for t in self.topics if t not in lost]


class _Options(Protocol):
    snapshot: bool
    max_hz: float | None
    rewind: int | None


O = TypeVar("O", bound=_Options)


class _Index:
    """The tracked topics, sorted once so that a pattern's topics are a range."""

    def __init__(self, last_seq: Mapping[str, int]) -> None:
        self.last_seq = last_seq
        self.sorted = sorted(last_seq)

    def covered(self, entry: str) -> dict[str, int]:
        if not entry.endswith("*"):
            seq = self.last_seq.get(entry)
            return {} if seq is None else {entry: seq}
        prefix = entry[:-1]
        out: dict[str, int] = {}
        i = bisect_left(self.sorted, prefix)
        while i < len(self.sorted) and self.sorted[i].startswith(prefix):
            t = self.sorted[i]
            out[t] = self.last_seq[t]
            i += 1
        return out


def covered_seqs(entries: Iterable[str], last_seq: Mapping[str, int]) -> dict[str, int]:
    """The ``{topic: seq}`` of ``last_seq`` that the entries (topics or ``PREFIX*``) cover."""
    index = _Index(last_seq)
    out: dict[str, int] = {}
    for e in entries:
        out.update(index.covered(e))
    return out


def _options_payload(opts: _Options, snapshot: bool | None = None, rewind: bool = True) -> dict[str, Any]:
    p: dict[str, Any] = {}
    snap = opts.snapshot if snapshot is None else snapshot
    if not snap:
        p["snapshot"] = False
    if opts.max_hz is not None:
        p["max_hz"] = opts.max_hz
    if rewind and snap and opts.rewind is not None:
        p["rewind"] = opts.rewind
    return p


def _request(entries: list[str], opts_payload: dict[str, Any], epoch: str | None,
             seqs: Mapping[str, int]) -> dict[str, Any]:
    p: dict[str, Any] = {"op": "subscribe", "topics": list(entries)}
    p.update(opts_payload)
    if epoch is not None and seqs:
        p["since"] = {"epoch": epoch, "seqs": dict(seqs)}
    return p


def _size(v: Any) -> int:
    return len(json.dumps(v, separators=(",", ":")))


def plan_resubscribe(
    groups: Sequence[tuple[O, Sequence[str]]],
    last_seq: Mapping[str, int],
    epoch: str | None,
    *,
    resume: bool = True,
    max_entries: int = 256,
    max_keys: int = MAX_SINCE_KEYS,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> list[tuple[dict[str, Any], O]]:
    """The subscribe requests (payloads without ``id``) that restore ``groups``.

    ``groups``: ``(options, entries)`` pairs, options with ``snapshot``,
    ``max_hz`` and ``rewind``; ``last_seq``: the last ``seq`` received per
    exact topic in ``epoch``. Returns ``(payload, options)`` pairs, the options
    being those to record for the request's entries once acknowledged.

    With ``resume`` (and a known ``epoch``) each request carries ``since``
    with the ``last_seq`` of every tracked topic its own entries cover; a
    topic covered by entries of several requests is named in each (the
    broker then sends no snapshot of it in any; a repeated replay is dropped
    by the client as stale). A request holds at most ``max_entries`` entries
    and ``max_keys`` keys, and its JSON about ``max_bytes`` at most (room is
    left for the ``id``). An entry alone covering more topics than one
    request may name is sent several times, each with a share of the keys,
    all but the last with ``snapshot: false`` (and no ``rewind``), the last
    with the entry's own options. Without resume the requests are the v1 ones.
    """
    if max_entries < 1 or max_keys < 1:
        raise ValueError("max_entries and max_keys must be >= 1")
    use_since = resume and epoch is not None and bool(last_seq)
    index = _Index(last_seq) if use_since else None
    out: list[tuple[dict[str, Any], O]] = []
    for opts, entries in groups:
        base = _options_payload(opts)
        if index is None:
            for i in range(0, len(entries), max_entries):
                out.append((_request(list(entries[i:i + max_entries]), base, None, {}), opts))
            continue
        # Bytes of a request with no entry and no key; then each entry costs
        # its JSON string and a comma, each key its "topic":seq and a comma.
        overhead = _size(_request(["x"], base, epoch, {"x": 0})) + _size(_ID_ROOM)
        batch: list[str] = []
        keys: dict[str, int] = {}
        size = overhead

        def flush() -> None:
            if batch:
                out.append((_request(batch, base, epoch, keys), opts))

        for e in entries:
            mine = index.covered(e)
            e_cost = _size(e) + 1
            if len(mine) > max_keys or overhead + e_cost + sum(_size(k) + _size(v) + 2 for k, v in mine.items()) > max_bytes:
                flush()
                batch, keys, size = [], {}, overhead
                quiet = _options_payload(opts, snapshot=False, rewind=False)
                shares: list[dict[str, int]] = [{}]
                share_size = overhead + e_cost
                for k, v in mine.items():
                    k_cost = _size(k) + _size(v) + 2
                    if shares[-1] and (len(shares[-1]) >= max_keys or share_size + k_cost > max_bytes):
                        shares.append({})
                        share_size = overhead + e_cost
                    shares[-1][k] = v
                    share_size += k_cost
                for share in shares[:-1]:
                    out.append((_request([e], quiet, epoch, share), opts))
                out.append((_request([e], base, epoch, shares[-1]), opts))
                continue
            new = {k: v for k, v in mine.items() if k not in keys}
            cost = e_cost + sum(_size(k) + _size(v) + 2 for k, v in new.items())
            if batch and (len(batch) >= max_entries or len(keys) + len(new) > max_keys or size + cost > max_bytes):
                flush()
                batch, keys, size = [], {}, overhead
                new = mine
                cost = e_cost + sum(_size(k) + _size(v) + 2 for k, v in new.items())
            batch.append(e)
            keys.update(new)
            size += cost
        flush()
    return out
