"""Plumbing shared by the parts of :class:`~tickwire.Subscriber`.

The subscriber is one class assembled from mixins, one per concern:
``connection.py`` (connect, reconnect with backoff, shutdown), ``acks.py``
(request ids, pending requests and their acks), ``dispatch.py`` (decoding
incoming messages and routing them) and ``subscriber.py`` (the public class:
constructor, lifecycle, requests, iteration). They share the state set up in
``Subscriber.__init__``; this base holds what all of them use.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

log = logging.getLogger("tickwire")

#: End marker put on the quote queue when the subscriber finishes.
_EOF = object()


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class _SubscriberBase:
    """Callback plumbing used by every part of the subscriber."""

    async def _callback(self, cb: Callable[..., Any], *args: Any) -> None:
        try:
            await _maybe_await(cb(*args))
        except Exception:  # noqa: BLE001
            log.exception("tickwire: callback %r failed", cb)

    async def _report(self, exc: Exception) -> None:
        if self.on_error is not None:
            await self._callback(self.on_error, exc)
        else:
            log.warning("tickwire: %s", exc)
