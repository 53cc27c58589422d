#!/usr/bin/env python3
"""Independent check of watchpost's webhook signatures, with code that is not watchpost's.

  verify_webhooks.py REQUESTS.json standard-webhooks SECRET   # the PyPI `standardwebhooks` package
  verify_webhooks.py REQUESTS.json standard-webhooks-alarm SECRET  # the same, for console alarms
  verify_webhooks.py REQUESTS.json hex SECRET HEADER          # hmac.new(secret, body, sha256).hexdigest()

REQUESTS.json: [{"headers": {name: value}, "body_b64": "..."}]. Prints one line per request and
exits 1 if any signature does not verify (or if there are no requests at all).
"""
import base64, hashlib, hmac, json, sys

from standardwebhooks.webhooks import Webhook


def main():
    path, mode, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    reqs = json.load(open(path))
    bad = 0
    for i, r in enumerate(reqs):
        body = base64.b64decode(r["body_b64"])
        headers = {k.lower(): v for k, v in r["headers"].items()}
        try:
            if mode == "standard-webhooks":
                payload = Webhook(secret).verify(body, headers)
                assert payload["data"]["alert_id"] == headers["webhook-id"], "webhook-id != alert_id"
            elif mode == "standard-webhooks-alarm":
                # Each delivery of an alarm event has its own webhook-id; the body names the alarm.
                payload = Webhook(secret).verify(body, headers)
                assert payload["type"] in ("alarm.raised", "alarm.resolved"), payload["type"]
                assert payload["data"]["alarm_id"], "no alarm_id"
            elif mode == "hex":
                want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                got = headers[sys.argv[4].lower()]
                assert hmac.compare_digest(want, got), "hex signature mismatch"
            else:
                raise SystemExit(f"unknown mode {mode}")
            print(f"{i}: ok")
        except Exception as e:  # noqa: BLE001 - report every failure, then fail
            bad += 1
            print(f"{i}: FAILED: {e!r}")
    if bad or not reqs:
        print(f"{bad} of {len(reqs)} failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
