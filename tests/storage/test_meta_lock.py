"""A lock named in the metadata database excludes every holder of the same name, in another
process and in other threads, on SQLite, MariaDB and PostgreSQL; other names do not wait for
it, and a holder that dies gives it back."""

from __future__ import annotations

import subprocess
import sys
import threading

from backends import drop_database, fresh_database
from phantoscope.storage.meta import MetaStore
from phantoscope.storage.meta_lock import meta_lock

WAIT_S = 0.5  # how long a second holder is given to (wrongly) get in
HOLDER = """
import sys
from phantoscope.storage.meta import MetaStore
from phantoscope.storage.meta_lock import meta_lock
store = MetaStore(sys.argv[1])
with meta_lock(store, "reject-duplicates:album"):
    print("held", flush=True)
    sys.stdin.readline()  # until told, or killed
"""


def _holder(url: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _entered(store: MetaStore, name: str) -> threading.Event:
    """Take ``name`` in a thread; set once it got in (then released)."""
    entered = threading.Event()

    def take() -> None:
        with meta_lock(store, name):
            entered.set()

    threading.Thread(target=take, daemon=True).start()
    return entered


def test_a_named_lock_excludes_another_process_and_other_threads(database):
    _, url = database
    store = MetaStore(url)
    try:
        holder = _holder(url)
        entered = _entered(store, "reject-duplicates:album")
        assert not entered.wait(WAIT_S)  # held by the other process
        with meta_lock(store, "reject-duplicates:other"):  # another name: free
            pass
        holder.communicate("go\n", timeout=30)
        assert entered.wait(30)  # given back with the block

        with meta_lock(store, "reject-duplicates:album"):
            same_process = _entered(store, "reject-duplicates:album")
            assert not same_process.wait(WAIT_S)
        assert same_process.wait(30)

        holder = _holder(url)
        after_kill = _entered(store, "reject-duplicates:album")
        assert not after_kill.wait(WAIT_S)
        holder.kill()  # its connection or file goes with it, and the lock with them
        holder.wait()
        assert after_kill.wait(30)
    finally:
        store.close()


def test_a_lock_of_one_mariadb_database_leaves_another_on_the_server_free():
    """MariaDB's lock names belong to the whole server: the database's name is part of ours."""
    urls = [fresh_database("mariadb"), fresh_database("mariadb")]
    store = MetaStore(urls[1])
    try:
        holder = _holder(urls[0])
        assert _entered(store, "reject-duplicates:album").wait(30)
        holder.communicate("go\n", timeout=30)
    finally:
        store.close()
        for url in urls:
            drop_database(url)
