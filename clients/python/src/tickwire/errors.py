"""Exceptions raised by the subscriber (exported from :mod:`tickwire`)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["TickwireError", "RequestError", "ConnectionClosedError", "MissingBaseError"]


class TickwireError(Exception):
    """Base class of this package's errors."""


class RequestError(TickwireError):
    """The broker answered a request with ``{"type":"error",...}``.

    ``code`` is the contract's error code (``bad_request``, ``bad_topic``,
    ``too_many_subscriptions``, ``not_authorized``, ``rate_limited``, or
    another code from a newer broker).
    """

    def __init__(self, code: str, message: str, id: int | None = None,
                 topics: Sequence[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.id = id
        self.topics = list(topics) if topics is not None else None


class ConnectionClosedError(TickwireError):
    """The subscriber is closed (or closed while a request waited for its ack)."""


class MissingBaseError(TickwireError):
    """A field delta arrived without its base: the connection's last quote of
    ``topic`` is absent (``base_seq`` None) or is not ``seq - 1``.

    A broker that keeps the contract never causes it. The subscriber never
    invents a quote from it: it reports this error and reconnects, so the
    next connection starts from full quotes (see ``Subscriber``).
    """

    def __init__(self, topic: str, seq: int, base_seq: int | None) -> None:
        have = "no quote" if base_seq is None else f"seq {base_seq}"
        super().__init__(f"delta {topic!r} seq {seq} without its base quote (this connection has {have})")
        self.topic = topic
        self.seq = seq
        self.base_seq = base_seq
