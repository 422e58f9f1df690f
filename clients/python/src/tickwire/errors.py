"""Exceptions raised by the subscriber (exported from :mod:`tickwire`)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["TickwireError", "RequestError", "ConnectionClosedError"]


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
