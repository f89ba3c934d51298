#!/usr/bin/python3
# Run as root: `python3 docs/wal_readonly_probe.py` (the findings are in docs/team-setup.md "Reading").
# What a reader that cannot write the -shm (or the directory) can do with mode=ro on a WAL database.
import os
import sqlite3
import subprocess
import tempfile

d = tempfile.mkdtemp(prefix="rocheck-")
os.chmod(d, 0o755)
db = os.path.join(d, "x.db")
w = sqlite3.connect(db, isolation_level=None)
w.execute("PRAGMA journal_mode=WAL")
w.execute("CREATE TABLE t(x)")
w.execute("INSERT INTO t VALUES (1)")
for f in os.listdir(d):
    os.chmod(os.path.join(d, f), 0o644)
print("files:", sorted(os.listdir(d)))
code = r"""
import sqlite3, sys
db = sys.argv[1]
for uri in (f"file:{db}?mode=ro", f"file:{db}?immutable=1"):
    try:
        c = sqlite3.connect(uri, uri=True); print(uri.split("?")[1], "read:", c.execute("SELECT count(*) FROM t").fetchone())
    except Exception as e: print(uri.split("?")[1], "fails:", e)
try:
    c = sqlite3.connect(db); c.execute("INSERT INTO t VALUES (2)"); c.commit(); print("write: succeeded")
except Exception as e: print("write fails:", e)
"""
open(os.path.join(d, "probe.py"), "w").write(code)
print("-- while the writer holds the db open (wal + shm exist, read-only to the reader)")
print(
    subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", os.path.join(d, "probe.py"), db],
        capture_output=True,
        text=True,
    ).stdout
    + subprocess.run(["true"]).__class__.__name__
)
w.execute("INSERT INTO t VALUES (3)")
print(
    subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", os.path.join(d, "probe.py"), db],
        capture_output=True,
        text=True,
    )
)
w.close()
print("-- after the writer closed (wal/shm removed):", sorted(os.listdir(d)))
print(
    subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", os.path.join(d, "probe.py"), db],
        capture_output=True,
        text=True,
    )
)
