#!/usr/bin/env python3
"""Prints what the email sink's test checks of a received message, as JSON: subject, from,
to, the text body and each attachment's name, type and sha256."""
import email
import email.policy
import hashlib
import json
import sys

msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
text = msg.get_body(preferencelist=("plain",))
out = {
    "subject": str(msg["subject"]),
    "from": str(msg["from"]),
    "to": str(msg["to"]),
    "message_id": str(msg["message-id"]),
    "text": text.get_content() if text else "",
    "attachments": [
        {
            "name": part.get_filename(),
            "type": part.get_content_type(),
            "sha256": hashlib.sha256(part.get_payload(decode=True)).hexdigest(),
        }
        for part in msg.iter_attachments()
    ],
}
print(json.dumps(out))
