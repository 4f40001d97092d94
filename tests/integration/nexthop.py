"""An SMTP next hop for the forwarding tests, built on Debian's aiosmtpd.

Usage: nexthop.py --mode record|silent [--cert PEM]

Listens on 127.0.0.1 port 0 and prints "127.0.0.1:PORT" once it accepts
connections.  In record mode every accepted message is printed as one JSON
line (sender, recipients, whether STARTTLS was used and whether it resumed
an earlier TLS session, content in base64), and recipients whose local
part starts with "reject" get 550 at RCPT.  In silent mode the final dot
is never answered.  With --cert (certificate and key in one PEM file)
STARTTLS is offered and required.
"""

import argparse
import asyncio
import base64
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, silent):
        self.silent = silent

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.silent:
            await asyncio.sleep(3600)
        ssl_object = server.transport.get_extra_info("ssl_object")
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "tls_resumed": ssl_object is not None and ssl_object.session_reused,
            "content": base64.b64encode(envelope.original_content).decode(),
        }), flush=True)
        return "250 2.0.0 Ok: queued"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("record", "silent"), default="record")
    ap.add_argument("--cert")
    args = ap.parse_args()
    kwargs = {}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert)
        kwargs = {"tls_context": ctx, "require_starttls": True}
    handler = Recorder(args.mode == "silent")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, loop=loop, hostname="hop.test.example",
                     **kwargs),
        host="127.0.0.1", port=0))
    print("127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
