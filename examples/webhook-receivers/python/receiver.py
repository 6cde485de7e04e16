#!/usr/bin/env python3
"""A webhook receiver for the delivery engine's events (docs/webhooks.md), in Python 3.8+ with the standard library
only. It verifies the Standard Webhooks signature itself (HMAC-SHA256 of "webhook-id.webhook-timestamp.body" with
the base64-decoded secret), answers at once, skips a message it has already handled (same webhook-id: a retry), and
handles each event of a new one. The standardwebhooks package on PyPI does the same check:
``Webhook(secret).verify(body, headers)``.

    WEBHOOK_SECRET=whsec_... PORT=8080 python3 receiver.py

Each handled event is printed as one JSON line; replace handle_event with your own code.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60

secret = os.environ.get("WEBHOOK_SECRET", "")
if not secret.startswith("whsec_"):
    sys.exit("WEBHOOK_SECRET must be the subscription secret (whsec_...), from POST /api/webhooks or GET /api/webhooks/:id/secret")
KEY = base64.b64decode(secret[len("whsec_"):])

# Message ids already handled. Keep them somewhere durable for longer than the engine retries (24 h by default).
handled_messages = set()
lock = threading.Lock()


def verify(headers, body):
    """Raises ValueError unless one v1 signature matches and the timestamp is recent."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise ValueError("missing webhook headers")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError("timestamp outside the tolerance")
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise ValueError("no matching signature")


def handle_event(event, message_id):
    data = event["data"]
    print(json.dumps({"messageId": message_id, "id": event["id"], "type": event["type"], "timestamp": event["timestamp"],
                      "deliveryId": data.get("deliveryId"), "recipientId": data.get("recipientId"),
                      "address": data.get("address"), "status": data.get("status"),
                      "failureReason": data.get("failureReason")}), flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        # Verify the bytes as received, before parsing them.
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            verify(self.headers, body)
        except ValueError as e:
            print(json.dumps({"rejected": str(e)}), file=sys.stderr, flush=True)
            self.send_response(401)
            self.end_headers()
            return
        message_id = self.headers["webhook-id"]
        with lock:
            if message_id not in handled_messages:
                # Events of one message are in order; a replayed event comes in a message of its own.
                for event in json.loads(body)["data"]["events"]:
                    handle_event(event, message_id)
                handled_messages.add(message_id)
        # Any 2xx acknowledges the message; anything else makes the engine try again later.
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass  # one line per event above is enough


if __name__ == "__main__":
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))), Receiver)
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    server.serve_forever()
