# drivercommon.py: what the Python driver clients (client-psycopg,
# client-psycopg-async, client-asyncpg) share: the contract's command line,
# its one-line answers and timeouts, and the text that `big` hashes.
# The contract itself is in the header of tests/drivers.sh.

import hashlib
import os
import signal
import sys

ACTIONS = ("connect", "big", "cancel")
KEYS = ("host", "hostaddr", "port", "user", "password", "dbname", "sslmode",
        "sslrootcert", "sslcert", "sslkey", "sslcrl", "channel_binding",
        "rows")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca",
            "verify-full")
CONNECT_TIMEOUT = 10        # seconds, the contract's
OVERALL_TIMEOUT = 60
CANCEL_AFTER = 1.0
CANCEL_WITHIN = 10.0
SLEEP_SQL = "SELECT pg_sleep(30)"
BIG_SQL = "SELECT i, md5(i::text) FROM generate_series(1, %d) i"
QUERY_CANCELED = "57014"


class Usage(Exception):
    pass


def one_line(text):
    return " ".join(str(text).split())


def answer(line, status=0):
    """Print the one line the harness reads and end, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    os._exit(status)


def error(sqlstate, message):
    answer("ERROR sqlstate=%s %s" % (sqlstate or "none", one_line(message)), 1)


def unsupported(why):
    answer("UNSUPPORTED " + one_line(why), 3)


def parse(argv):
    """ACTION key=value ...: the action and a dict of the keys given."""
    if len(argv) < 2 or argv[1] not in ACTIONS:
        raise Usage("usage: %s connect|big|cancel key=value ..." % argv[0])
    keys = {}
    for arg in argv[2:]:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise Usage("unknown argument %r" % arg)
        keys[key] = value
    for key in ("host", "port", "user", "dbname"):
        if key not in keys:
            raise Usage("%s= is required" % key)
    if "sslmode" in keys and keys["sslmode"] not in SSLMODES:
        raise Usage("unknown sslmode %r" % keys["sslmode"])
    if argv[1] == "big":
        try:
            keys["rows"] = int(keys.get("rows", ""))
        except ValueError:
            raise Usage("big wants rows=N")
    return argv[1], keys


def start(argv):
    """Parse the command line and arm the overall timeout; a usage error is
    an ERROR line (and exit 1), never a traceback."""
    try:
        action, keys = parse(argv)
    except Usage as e:
        error(None, e)

    def expired(signum, frame):
        error(None, "no answer within %d s (the client's overall timeout)"
              % OVERALL_TIMEOUT)
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(OVERALL_TIMEOUT)
    return action, keys


def ssl_word(on):
    return "ssl=on" if on else "ssl=off"


class BigText:
    """The md5 and length of "i,md5\\n" over the rows, fed in order."""

    def __init__(self):
        self.md5 = hashlib.md5()
        self.rows = 0
        self.bytes = 0

    def feed(self, rows):
        chunk = "".join("%d,%s\n" % (i, h) for i, h in rows).encode()
        self.md5.update(chunk)
        self.bytes += len(chunk)
        self.rows += len(rows)

    def line(self, ssl_on):
        return "OK %s rows=%d bytes=%d md5=%s" % (
            ssl_word(ssl_on), self.rows, self.bytes, self.md5.hexdigest())
