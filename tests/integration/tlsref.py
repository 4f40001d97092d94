"""Run Debian's aiosmtpd 1.4.3 with TLS and AUTH, as the reference for
the side-by-side STARTTLS and AUTH tests (refserver.py has neither).

Usage: tlsref.py --hostname H [--cert FILE --key FILE [--smtps]]
                 [--require-starttls] [--auth-required]
                 [--no-auth-require-tls] [--user LOGIN:PASSWORD ...]

The server listens on 127.0.0.1 port 0, prints "127.0.0.1:PORT" once it
accepts connections, and sinks every message.  --cert/--key give it a
tls_context for STARTTLS, or with --smtps wrap the listener in TLS as
aiosmtpd's --smtpscert does.  Users are checked by an authenticator, as
aiosmtpd's documentation shows.
"""

import argparse
import asyncio
import ssl

from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hostname", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--smtps", action="store_true")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth-required", action="store_true")
    p.add_argument("--no-auth-require-tls", action="store_true")
    p.add_argument("--user", action="append", default=[])
    args = p.parse_args()

    users = dict(u.split(":", 1) for u in args.user)

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=users.get(login) == password,
                          handled=False)

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.check_hostname = False
        context.load_cert_chain(args.cert, args.key)
    kwargs = dict(hostname=args.hostname, authenticator=authenticator,
                  auth_required=args.auth_required,
                  auth_require_tls=not args.no_auth_require_tls)
    if context is not None and not args.smtps:
        kwargs.update(tls_context=context,
                      require_starttls=args.require_starttls)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(Sink(), loop=loop, **kwargs), host="127.0.0.1", port=0,
        ssl=context if args.smtps else None))
    port = server.sockets[0].getsockname()[1]
    print("127.0.0.1:%d" % port, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
