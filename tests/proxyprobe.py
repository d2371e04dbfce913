#!/usr/bin/python3
"""proxyprobe: raw PROXY protocol headers against pgsslgate, for proxy.sh.

Connects (optionally from a given local address), sends a header built from
a spec, optionally an SSLRequest (in the same packet, or after), and reports
what came back as one line: "S", "N", "error: MESSAGE", "closed after T s",
"auth" (after TLS and a StartupMessage, an authentication request came).
Exits 0 when that matches --expect.

Header specs: v1:TEXT (CRLF added), v2:local, v2:tcp4:SRC:SPORT,
v2:tcp6:SRC:SPORT, each optionally followed by +aws=ID, +azure=N (TLVs),
+crc (a CRC32C TLV); hex:BYTES for anything else; none for no header.
"""
import argparse
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
SSL_REQUEST = struct.pack(">II", 8, 80877103)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def tlv(kind, value):
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def build_header(spec, port):
    if spec == "none":
        return b""
    if spec.startswith("hex:"):
        return bytes.fromhex(spec[4:])
    if spec.startswith("v1:"):
        return spec[3:].encode() + b"\r\n"
    parts = spec.split("+")
    base, extras = parts[0].split(":"), parts[1:]
    if base[1] == "local":
        cmd, fam, body = 0x20, 0x00, b""
    elif base[1] == "tcp4":
        cmd, fam = 0x21, 0x11
        body = socket.inet_aton(base[2]) + socket.inet_aton("127.0.0.1") + \
            struct.pack(">HH", int(base[3]), port)
    elif base[1] == "tcp6":
        cmd, fam = 0x21, 0x21
        body = socket.inet_pton(socket.AF_INET6, ":".join(base[2:-1])) + \
            socket.inet_pton(socket.AF_INET6, "::1") + \
            struct.pack(">HH", int(base[-1]), port)
    else:
        raise SystemExit("unknown header spec " + spec)
    crc = False
    for extra in extras:
        key, _, value = extra.partition("=")
        if key == "aws":
            body += tlv(0xEA, b"\x01" + value.encode())
        elif key == "azure":
            body += tlv(0xEE, b"\x01" + struct.pack("<I", int(value)))
        elif key == "crc":
            crc = True
        else:
            raise SystemExit("unknown TLV " + key)
    if crc:
        body += tlv(0x03, b"\x00\x00\x00\x00")
    header = SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body
    if crc:
        header = header[:-4] + struct.pack(">I", crc32c(header))
    return header


def read_reply(sock, timeout):
    """The first answer: S, N, error: ..., or closed after T s."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        first = sock.recv(1)
    except socket.timeout:
        return "no answer within %g s" % timeout
    except ConnectionResetError:
        return "closed after %.2f s (reset)" % (time.monotonic() - t0)
    if not first:
        return "closed after %.2f s" % (time.monotonic() - t0)
    if first in (b"S", b"N"):
        return first.decode()
    if first == b"E":
        data = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        fields = {}
        for field in data[4:].split(b"\x00"):
            if field:
                fields[chr(field[0])] = field[1:].decode(errors="replace")
        return "error: %s %s" % (fields.get("C", "?"), fields.get("M", "?"))
    return "unexpected byte %r" % first


def startup(user, database):
    body = struct.pack(">I", 196608)
    for key, value in (("user", user), ("database", database)):
        body += key.encode() + b"\x00" + value.encode() + b"\x00"
    body += b"\x00"
    return struct.pack(">I", len(body) + 4) + body


def tls_startup(sock, args):
    """TLS on sock, a StartupMessage: "auth" if authentication is asked."""
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.check_hostname = False
    if args.cafile is None:
        ctx.verify_mode = ssl.CERT_NONE
    if args.direct:
        ctx.set_alpn_protocols(["postgresql"])
    sock.settimeout(args.timeout)
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    tls.sendall(startup(args.user, "postgres"))
    kind = tls.recv(1)
    tls.close()
    return {b"R": "auth", b"E": "error after TLS"}.get(
        kind, "unexpected reply %r" % kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--bind", default=None, help="local address to use")
    ap.add_argument("--header", default="none")
    ap.add_argument("--ssl", choices=("same", "after", "no"), default="same",
                    help="an SSLRequest in the header's packet, or after")
    ap.add_argument("--split", action="store_true",
                    help="send the header a byte at a time")
    ap.add_argument("--tls", action="store_true",
                    help="after S: TLS, then a StartupMessage")
    ap.add_argument("--direct", action="store_true",
                    help="TLS at once after the header (sslnegotiation="
                    "direct, ALPN postgresql), then a StartupMessage")
    ap.add_argument("--user", default="app")
    ap.add_argument("--cafile", default=None)
    ap.add_argument("--shut", action="store_true",
                    help="shut down the writing side after sending")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--expect", required=True,
                    help="what the answer must start with")
    args = ap.parse_args()

    header = build_header(args.header, args.port)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else
                         socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.bind:
        sock.bind((args.bind, 0))
    sock.connect((args.host, args.port))
    if args.direct:
        sock.sendall(header)
        reply = tls_startup(sock, args)
        print(reply)
        sys.exit(0 if reply.startswith(args.expect) else 1)
    if args.split:
        for i in range(len(header)):
            sock.sendall(header[i:i + 1])
            time.sleep(0.01)
        header = b""
    if args.ssl == "same":
        sock.sendall(header + SSL_REQUEST)
    elif args.ssl == "after":
        sock.sendall(header)
        time.sleep(0.2)
        sock.sendall(SSL_REQUEST)
    elif header:
        sock.sendall(header)
    if args.shut:
        sock.shutdown(socket.SHUT_WR)
    reply = read_reply(sock, args.timeout)
    if reply == "S" and args.tls:
        reply = tls_startup(sock, args)
    print(reply)
    sys.exit(0 if reply.startswith(args.expect) else 1)


if __name__ == "__main__":
    main()
