#!/usr/bin/env python3
"""Issue an HS256 JWT for tickwire subscribers (standard library only).

Your web app does this after its own login, for the user's entitlements:

    scripts/issue-token.py --secret-file /etc/tickwire/jwt.secret \
        --sub alice --topics AAPL 'NASDAQ.*' --ttl 900

prints the token; the page sends {"op":"auth","token":"<it>"} on its
WebSocket and again, with a fresh token, before `exp` (see docs/security.md).
"""
import argparse
import base64
import hashlib
import hmac
import json
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue(secret: bytes, topics, ttl: int, sub=None, iss=None, aud=None) -> str:
    claims = {"exp": int(time.time()) + ttl, "topics": list(topics)}
    if sub:
        claims["sub"] = sub
    if iss:
        claims["iss"] = iss
    if aud:
        claims["aud"] = aud
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--secret-file", required=True, help="the broker's [auth] jwt_hs256_secret_file")
    p.add_argument("--topics", nargs="+", required=True, help="grants: topics and PREFIX* patterns")
    p.add_argument("--ttl", type=int, default=900, help="seconds until exp (default 900)")
    p.add_argument("--sub", help="subject (user id), echoed in the authed reply")
    p.add_argument("--iss", help="issuer, if the broker checks one")
    p.add_argument("--aud", help="audience, if the broker checks one")
    a = p.parse_args()
    with open(a.secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    print(issue(secret, a.topics, a.ttl, a.sub, a.iss, a.aud))


if __name__ == "__main__":
    main()
