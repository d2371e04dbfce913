#!/usr/bin/python3
"""drainclient: psycopg clients for tests/drain.sh (a SIGTERM drain).

  drainclient.py hold CONNINFO FILE [--begin]
      Connect, (BEGIN,) SELECT 1, print "ready", wait until FILE exists,
      (COMMIT, printing "commit ok",) then run SELECT 1 and print the
      error it gets: "error sqlstate=S severity=V message=M", or "ok".
  drainclient.py stream CONNINFO
      Connect, BEGIN, print "ready", then fetch a 4 MB result over and
      over until a statement fails; print the error as above.
  drainclient.py workload CONNINFO STATEFILE STOPFILE WORKERS
      WORKERS threads each INSERT (worker, n) rows, n = 1, 2, ... with
      autocommit, until STOPFILE exists.  A statement that fails with
      57P01 (the gate's drain: admin_shutdown()) was not executed: the worker reconnects
      and runs the same statement again, so a row written twice would
      fail on the primary key.  Counts go to STATEFILE (JSON) as they
      change.

Every connection has a 10 s connect timeout; nothing waits forever.
"""
import json
import os
import sys
import threading
import time

import psycopg

ADMIN_SHUTDOWN = "57P01"
ADMIN_SHUTDOWN_TEXT = "terminating connection due to administrator command"
WAIT_LIMIT_S = 60


def admin_shutdown(err):
    """The drain's FATAL 57P01.  libpq reports it with its SQLSTATE when it
    reads it as a query's answer; psycopg, whose non-blocking reads meet
    the message and the connection's end in one go, as "consuming input
    failed: " and PostgreSQL's text, without one."""
    return (getattr(err, "sqlstate", None) == ADMIN_SHUTDOWN or
            ADMIN_SHUTDOWN_TEXT in str(err))


def connect(conninfo):
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


def describe(err):
    diag = getattr(err, "diag", None)
    sqlstate = getattr(err, "sqlstate", None) or "none"
    severity = (diag.severity if diag is not None else None) or "none"
    message = (diag.message_primary if diag is not None else None) or str(err)
    return "error sqlstate=%s severity=%s message=%s" % (
        sqlstate, severity, " ".join(message.split()))


def wait_for(path):
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            print("timeout waiting for", path, flush=True)
            sys.exit(1)
        time.sleep(0.05)


def hold(conninfo, path, begin):
    conn = connect(conninfo)
    if begin:
        conn.execute("BEGIN")
    conn.execute("SELECT 1")
    print("ready", flush=True)
    wait_for(path)
    try:
        if begin:
            conn.execute("COMMIT")
            print("commit ok", flush=True)
        # The drain's 57P01 follows the ReadyForQuery just read.
        time.sleep(0.5)
        conn.execute("SELECT 1")
        print("ok", flush=True)
    except psycopg.Error as err:
        print(describe(err), flush=True)


def stream(conninfo):
    conn = connect(conninfo)
    conn.execute("BEGIN")
    print("ready", flush=True)
    deadline = time.monotonic() + WAIT_LIMIT_S
    rounds = 0
    try:
        while time.monotonic() < deadline:
            cur = conn.execute("SELECT i, repeat('x', 200) FROM "
                               "generate_series(1, 20000) i")
            if len(cur.fetchall()) != 20000:
                print("short result", flush=True)
                return
            rounds += 1
        print("ok rounds=%d" % rounds, flush=True)
    except psycopg.Error as err:
        print(describe(err) + " rounds=%d" % rounds, flush=True)


class Counts:
    def __init__(self, workers):
        self.lock = threading.Lock()
        self.statements = 0
        self.failed = 0
        self.reconnects = 0
        self.connect_retries = 0
        self.per_worker = [{"statements": 0, "reconnects": 0,
                            "after_last_reconnect": 0, "connected": False}
                           for _ in range(workers)]
        self.errors = []

    def dump(self, path):
        with self.lock:
            state = {"statements": self.statements, "failed": self.failed,
                     "reconnects": self.reconnects,
                     "connect_retries": self.connect_retries,
                     "workers": self.per_worker, "errors": self.errors[:10]}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.write("\n")
        os.replace(tmp, path)


def worker(conninfo, wid, counts, stop):
    me = counts.per_worker[wid]
    conn = None
    n = 1
    while not os.path.exists(stop):
        if conn is None:
            try:
                conn = connect(conninfo)
            except psycopg.Error as err:
                # A balancer that has not yet seen a gate go: try again.
                with counts.lock:
                    counts.connect_retries += 1
                    counts.errors.append("connect: " + describe(err))
                time.sleep(0.1)
                continue
            with counts.lock:
                me["connected"] = True
        try:
            conn.execute("INSERT INTO drain_rows (w, n) VALUES (%s, %s)",
                         (wid, n))
        except psycopg.Error as err:
            conn.close()
            conn = None
            with counts.lock:
                if admin_shutdown(err):
                    counts.reconnects += 1
                    me["reconnects"] += 1
                    me["after_last_reconnect"] = 0
                    me["connected"] = False
                else:
                    counts.failed += 1
                    counts.errors.append("w%d n=%d: %s" % (wid, n,
                                                           describe(err)))
                    n += 1
            continue
        with counts.lock:
            counts.statements += 1
            me["statements"] += 1
            me["after_last_reconnect"] += 1
        n += 1
    if conn is not None:
        conn.close()


def workload(conninfo, statefile, stop, nworkers):
    counts = Counts(nworkers)
    threads = [threading.Thread(target=worker,
                                args=(conninfo, i, counts, stop))
               for i in range(nworkers)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        counts.dump(statefile)
        time.sleep(0.2)
    for t in threads:
        t.join()
    counts.dump(statefile)


def main():
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "hold":
        hold(args[1], args[2], "--begin" in args[3:])
    elif len(args) == 2 and args[0] == "stream":
        stream(args[1])
    elif len(args) == 5 and args[0] == "workload":
        workload(args[1], args[2], args[3], int(args[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
