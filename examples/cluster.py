"""A three-node panal cluster, started from this script (`make demo` runs it).

Starts 3 nodes as OS processes (`python -m panal node`), joins them with an
embedded node of its own, starts servers, data and client processes across
them, writes 10,000 keys and prints how they spread over the 5 data
processes (each slot has 3 copies). Then it kills the master server and a
data process, and shows the supervisors restarting them, the new master,
the restarted data process refilling its slots from the other copies, and
every key still there. It leaves no process behind.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import panal


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(name, cookie_file, join=None):
    cmd = [sys.executable, "-m", "panal", "node", "--name", name, "--cookie-file", cookie_file, "--threads", "1"]
    if join:
        cmd += ["--join", join]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = open(os.path.join(os.path.dirname(cookie_file), name.split("@")[0] + ".log"), "w")
    for line in proc.stdout:  # wait until it is up
        log.write(line)
        if " up " in line:
            # From here its log goes to a file (a full pipe would stop the node).
            threading.Thread(target=lambda: [log.write(x) or log.flush() for x in proc.stdout], daemon=True).start()
            return proc
    raise RuntimeError(f"node {name} did not start")


def main():
    workdir = tempfile.mkdtemp(prefix="panal-demo-")
    cookie_file = os.path.join(workdir, "cookie")
    with open(cookie_file, "w") as f:
        f.write("demo-cookie")
    os.chmod(cookie_file, 0o600)

    names = [f"n{i}@127.0.0.1:{free_port()}" for i in (1, 2, 3)]
    procs = []
    try:
        procs.append(start_node(names[0], cookie_file))
        for name in names[1:]:
            procs.append(start_node(name, cookie_file, join=names[0]))
        print("started 3 node processes:", ", ".join(names))

        with panal.Node(f"demo@127.0.0.1:{free_port()}", cookie_file=cookie_file) as me:
            me.connect(names[0])
            me.start_server("mydb", [names[0], names[1]])          # two servers: the oldest is master
            me.start_data("mydb", [names[0], names[1]], count=2)   # 2 + 2 data processes
            me.start_data("mydb", [names[2]])                      # + 1
            db = me.start_client("c1", "mydb", [names[2]])         # a client process on n3
            print(me)

            db.mset({f"key:{i}": i for i in range(10_000)})
            stats = me.stats("mydb")
            spread = [s["keys_primary"] for s in stats]
            copies = sum(s["keys"] for s in stats)
            print(f"10,000 keys over {len(spread)} data processes (as primary): {'/'.join(map(str, spread))}; "
                  f"{copies} copies in all")

            master = me.master("mydb")
            print("\nkilling the master server", master)
            me.kill(master)
            db["after-failover"] = "written while the master was being replaced"  # the master is not on the data path
            deadline = time.monotonic() + 10
            while me.master("mydb") in (None, master) and time.monotonic() < deadline:
                time.sleep(0.05)
            print("a write right after: ok; the new master is", me.master("mydb"))
            print("and read back:", db["after-failover"])

            victim = me.groups("mydb")["data"][0]
            print("killing a data process", victim)
            me.kill(victim)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                data = me.groups("mydb")["data"]
                if len(data) == 5 and victim not in data:
                    break
                time.sleep(0.05)
            print("its supervisor restarted it: data processes now", len(me.groups("mydb")["data"]))
            back = None
            while time.monotonic() < deadline + 20:
                # Serving again, once the restarted process has refilled.
                stats = me.stats("mydb")
                back = next((s for s in stats if s["pid"] != victim and s["keys_in"] > 0), None)
                if back and len(stats) == 5 and all(s["state"] == "serving" for s in stats):
                    break
                time.sleep(0.05)
            assert back, "the restarted data process did not refill in time"
            print(f"it refilled its slots from the other copies ({back['keys_in']} keys) and serves again")
            values = db.mget([f"key:{i}" for i in range(10_000)])
            print("all 10,000 keys read back:", values == list(range(10_000)))
            # A TCP client homed on n3 learns the slot map and sends each
            # key straight to its primary's node, with a session on each.
            with panal.connect(names[2].split("@")[1], db="mydb") as remote:
                same = remote.mget([f"key:{i}" for i in range(10_000)]) == values
                print("a TCP client homed on n3 read them too:", same, "- sessions with",
                      ", ".join(n.split("@")[0] for n in remote.sessions()))
            servers = me.groups("mydb")["server"]
            print(f"servers now {len(servers)}: the restarted one is the youngest, so", me.master("mydb"),
                  "stays master")
            print(me)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        print("\nall node processes stopped:", all(p.poll() is not None for p in procs))


if __name__ == "__main__":
    main()
