#!/usr/bin/python3
# A local SMTP relay for scripts/bench.sh's email figure (Debian's aiosmtpd): accepts every
# message, DELAY seconds after its data ends (a relay slow to queue mail when DELAY > 0), and
# appends its Message-ID to OUT, one line each, so duplicates can be counted.
# Usage: smtp_sink.py PORT DELAY OUT
import asyncio
import sys
import time

from aiosmtpd.controller import Controller

port, delay, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]


class Sink:
    async def handle_DATA(self, server, session, envelope):
        if delay > 0:
            await asyncio.sleep(delay)
        text = envelope.content.decode("utf-8", "replace")
        message_id = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                           if line.lower().startswith("message-id:")), "-")
        with open(out, "a") as f:
            f.write(message_id + "\n")
        return "250 OK"


controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
