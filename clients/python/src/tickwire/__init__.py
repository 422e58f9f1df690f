"""tickwire: Python client for the tickwire market-data broker.

* :class:`Publisher`: blocking feed producer (ingest TCP/TLS, bincode frames).
* :class:`Subscriber`: asyncio WebSocket subscriber (JSON or binary quotes),
  with reconnect (over several broker URLs), resubscribe with resume
  (protocol v1.2 ``since``), epoch-aware gap tracking, and field deltas
  (protocol v1.2 ``delta=1``) rebuilt into full quotes.
"""

from .deltas import QuoteRebuilder
from .gaps import Gap, GapTracker
from .protocol import (
    Delta,
    Quote,
    decode_binary_delta,
    decode_binary_message,
    decode_binary_quote,
    delta_from_json,
    encode_batch,
    encode_hello,
    encode_quote,
    is_valid_pattern,
    is_valid_topic,
    quote_from_json,
)
from .publisher import Publisher
from .resume import Resume
from .subscriber import (
    AuthAck,
    ConnectionClosedError,
    MissingBaseError,
    RequestError,
    State,
    SubscribeAck,
    Subscriber,
    TickwireError,
    UnsubscribeAck,
)

__version__ = "0.1.0"

__all__ = [
    "AuthAck",
    "ConnectionClosedError",
    "Delta",
    "Gap",
    "GapTracker",
    "MissingBaseError",
    "Publisher",
    "Quote",
    "QuoteRebuilder",
    "RequestError",
    "Resume",
    "State",
    "SubscribeAck",
    "Subscriber",
    "TickwireError",
    "UnsubscribeAck",
    "decode_binary_delta",
    "decode_binary_message",
    "decode_binary_quote",
    "delta_from_json",
    "encode_batch",
    "encode_hello",
    "encode_quote",
    "is_valid_pattern",
    "is_valid_topic",
    "quote_from_json",
]
