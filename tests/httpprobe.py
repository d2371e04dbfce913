#!/usr/bin/python3
# httpprobe.py: the HTTP clients tests/metrics.sh points at metrics_listen,
# standard library only.  Each mode prints what it saw, for the shell to
# check; the exit status is 0 unless the mode itself could not run.
#
#   request PORT RAW          send RAW (with \r \n escapes), print the reply
#   get PORT PATH [METHOD]    a well-formed HTTP/1.1 request, print the reply
#   idle PORT N FILE          open N connections (as many as connect), say
#                             "opened K", hold them until FILE exists
#   idle-close PORT           connect, send nothing: "closed after S s"
#   flood PORT MB             a request line, then an endless header line of
#                             up to MB megabytes: "closed after S s, sent B"
import os
import socket
import sys
import time


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    return s


def read_all(s, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout) as e:
        data += ("\n[%s]" % type(e).__name__).encode()
    return data


def request(port, raw):
    s = connect(port)
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError) as e:
        print("[send: %s]" % type(e).__name__)
    sys.stdout.write(read_all(s).decode("latin-1").replace("\r", ""))
    s.close()


def idle(port, n, file):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", int(port)))
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(1)
    opened = 0
    for s in socks:
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            try:
                s.getpeername()
                opened += 1
            except OSError:
                pass
    print("opened %d" % opened, flush=True)
    deadline = time.time() + 60
    while not os.path.exists(file) and time.time() < deadline:
        time.sleep(0.1)
    for s in socks:
        s.close()


def idle_close(port):
    s = connect(port, timeout=30)
    t0 = time.time()
    data = read_all(s)
    print("closed after %.1f s (%d bytes)" % (time.time() - t0, len(data)))


def flood(port, mb):
    s = connect(port, timeout=30)
    t0 = time.time()
    sent = 0
    chunk = b"a" * 65536
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
        while sent < int(mb) * 1024 * 1024:
            s.sendall(chunk)
            sent += len(chunk)
        outcome = "not closed"
    except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
        outcome = "closed (%s)" % type(e).__name__
    print("%s after %.1f s, sent %d" % (outcome, time.time() - t0, sent))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "request":
        raw = args[1].replace("\\r", "\r").replace("\\n", "\n")
        request(args[0], raw.encode("latin-1"))
    elif mode == "get":
        method = args[2] if len(args) > 2 else "GET"
        request(args[0], ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" %
                          (method, args[1])).encode())
    elif mode == "idle":
        idle(*args)
    elif mode == "idle-close":
        idle_close(*args)
    elif mode == "flood":
        flood(*args)
    else:
        sys.exit("unknown mode " + mode)


main()
