"""Subscriber auth (JWT, token refresh on reconnect) and TLS (wss + ingest TLS)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tickwire import Publisher, Quote, RequestError, State, Subscriber

from conftest import async_wait_until, run

SECRET = "tickwire-python-client-test-secret-0123456789"
RECV_TIMEOUT = 20.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(topics: list[str], sub: str | None = "alice", ttl: int = 3600, secret: str = SECRET) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims: dict = {"exp": int(time.time()) + ttl, "topics": topics}
    if sub is not None:
        claims["sub"] = sub
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(sig)}"


def q(topic: str, i: int) -> Quote:
    return Quote(topic, bid=float(i), ask=i + 0.5, bid_size=1.0, ask_size=2.0, last=float(i), volume=3.0,
                 ts=1_700_000_000_000_000_000 + i)


def test_auth_op_and_token_refresh_on_reconnect(make_broker, topic):
    b = make_broker(config=f'[auth]\njwt_hs256_secret = "{SECRET}"\nanonymous_topics = ["PUBLIC.*"]\n')
    prefix = topic("AUTH")
    t = f"{prefix}.X"
    issued: list[str] = []
    errors: list[Exception] = []

    def provider() -> str:
        token = make_jwt([f"{prefix}.*"], sub=f"refresh{len(issued)}")
        issued.append(token)
        return token

    async def main():
        manual = Subscriber(b.ws_url, on_error=errors.append, backoff_initial=0.05, backoff_max=0.5)
        refreshing = Subscriber(b.ws_url, format="binary", token_provider=provider, on_error=errors.append,
                                backoff_initial=0.05, backoff_max=0.5)
        async with manual, refreshing:
            # Before auth only anonymous_topics are granted.
            await manual.subscribe("PUBLIC.news", snapshot=False)
            with pytest.raises(RequestError) as e:
                await manual.subscribe(t)
            assert e.value.code == "not_authorized"
            with pytest.raises(RequestError) as e:
                await manual.auth(make_jwt([t], secret="another-secret-another-secret-0000"))
            assert e.value.code == "not_authorized"
            ack = await manual.auth(make_jwt([f"{prefix}.*"], sub="alice"))
            assert ack.sub == "alice" and ack.exp is not None and ack.exp > time.time()
            await manual.subscribe(t)

            # token_provider: auth sent automatically on connect.
            assert len(issued) == 1
            await async_wait_until(lambda: refreshing.pending_requests == 0, what="auth ack")
            await refreshing.subscribe(t)

            with Publisher("127.0.0.1", b.ingest_port) as pub:
                pub.publish(q(t, 1))
            assert (await manual.recv(RECV_TIMEOUT)).seq == 1
            assert (await refreshing.recv(RECV_TIMEOUT)).seq == 1

            # Broker restart: both reconnect, authenticate again (the provider
            # is asked for a fresh token; `manual` reuses its last token) and
            # resubscribe; a refused re-auth would make the resubscribe fail.
            epoch = manual.epoch
            await asyncio.get_running_loop().run_in_executor(None, b.restart)
            for s in (manual, refreshing):
                await async_wait_until(lambda s=s: s.connections == 2 and s.state == State.OPEN
                                       and s.pending_requests == 0, what="reconnected and resubscribed")
            assert len(issued) == 2
            assert manual.epoch != epoch and refreshing.epoch == manual.epoch
            with Publisher("127.0.0.1", b.ingest_port) as pub:
                pub.publish(q(t, 2))
            assert (await manual.recv(RECV_TIMEOUT)).bid == 2.0
            assert (await refreshing.recv(RECV_TIMEOUT)).bid == 2.0
            assert set(manual.subscriptions) == {"PUBLIC.news", t}
        assert errors == []

    run(main(), timeout=90)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A throwaway CA and a leaf for localhost / 127.0.0.1 (EC P-256)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    d = tmp_path / "certs"
    d.mkdir()
    (d / "ca.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n[dn]\nCN = tickwire test CA\n"
        "[v3_ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n")
    (d / "leaf.ext").write_text(
        "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\nsubjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n")
    try:
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-config", "ca.cnf", cwd=d)
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost", cwd=d)
        _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext", cwd=d)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"could not create test certificates with openssl: {e}")
    return d


def test_tls_publisher_and_wss_subscriber(make_broker, certs, topic):
    leaf, key = certs / "leaf.pem", certs / "leaf.key"
    b = make_broker(
        config=(f'[tls]\ncert_file = "{leaf}"\nkey_file = "{key}"\n'
                f'[ingest]\ntokens = ["tls-feed"]\n'
                f'[ingest.tls]\ncert_file = "{leaf}"\nkey_file = "{key}"\n'),
        tls=True)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    t = topic()

    async def main():
        async with Subscriber(b.wss_url, format="binary", ssl=ctx) as sub:
            await sub.subscribe(t)
            with Publisher("127.0.0.1", b.ingest_port, ssl_context=ctx, server_hostname="localhost",
                           token="tls-feed") as pub:
                pub.publish(q(t, 1))
                pub.publish_batch([q(t, 2), q(t, 3)])
            got = [await sub.recv(RECV_TIMEOUT) for _ in range(3)]
            assert [(x.seq, x.bid) for x in got] == [(1, 1.0), (2, 2.0), (3, 3.0)]
        # A plain-TCP producer is not admitted on the TLS ingest listener.
        plain = Publisher("127.0.0.1", b.ingest_port, token="tls-feed")
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, lambda: _closed_within(plain, 20.0))
        plain.close() if not plain.closed else None

    run(main())


def _closed_within(p: Publisher, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.peer_closed(0.2):
            return True
    return False
