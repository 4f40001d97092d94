"""Run Debian's aiosmtpd 1.4.3 as the reference, with chosen settings.

Usage: refserver.py --hostname H [--lmtp True] [--handler "'sink'"]
                    [--<SMTP keyword> <python literal>] ...

Each option value is a Python literal (as repr() writes it).  The server
listens on 127.0.0.1 port 0 and prints "127.0.0.1:PORT" once it accepts
connections.  --handler is 'sink', 'debugging', 'mailbox:DIR' or
'proxy:HOST:PORT'; with a '+proxyhook' suffix the handler also has a
handle_PROXY that accepts every PROXY header (aiosmtpd closes PROXY
connections when it has none).
--local-part-limit and --command-size-limit set the class attributes of
the same name.
"""

import ast
import asyncio
import sys

from aiosmtpd.handlers import Debugging, Mailbox, Proxy, Sink
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP


def with_proxy_hook(handler):
    """The handler, with a handle_PROXY that accepts every header."""
    async def handle_PROXY(server, session, envelope, proxy_data):
        return True

    handler.handle_PROXY = handle_PROXY
    return handler


def main(argv):
    opts = {}
    it = iter(argv)
    for key in it:
        value = next(it)
        name = key.lstrip("-").replace("-", "_")
        opts[name] = value if name == "hostname" else ast.literal_eval(value)
    lmtp = opts.pop("lmtp", False)
    handler_spec = opts.pop("handler", "sink")
    accept_proxy = handler_spec.endswith("+proxyhook")
    handler_spec = handler_spec[:-len("+proxyhook")] if accept_proxy \
        else handler_spec
    if "smtputf8" in opts:
        opts["enable_SMTPUTF8"] = opts.pop("smtputf8")
    if handler_spec == "debugging":
        handler = Debugging(sys.stdout)
    elif handler_spec.startswith("mailbox:"):
        handler = Mailbox(handler_spec.split(":", 1)[1])
    elif handler_spec.startswith("proxy:"):
        _, host, port = handler_spec.split(":")
        handler = Proxy(host, int(port))
    else:
        handler = Sink()
    if accept_proxy:
        handler = with_proxy_hook(handler)
    cls = LMTP if lmtp else SMTP
    attrs = {}
    for attr in ("local_part_limit", "command_size_limit"):
        if attr in opts:
            attrs[attr] = opts.pop(attr)
    if attrs:
        cls = type("Configured" + cls.__name__, (cls,), attrs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: cls(handler, loop=loop, **opts), host="127.0.0.1", port=0))
    port = server.sockets[0].getsockname()[1]
    print("127.0.0.1:%d" % port, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main(sys.argv[1:])
