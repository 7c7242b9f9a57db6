"""A first look at panal's runtime from Python: processes, round trips, the GIL.

Starts the process runtime in background threads, measures message round
trips between two processes, shows that the GIL is free while C++ waits,
and stops and restarts the runtime in the same interpreter.
"""
import threading
import time

import panal


def main():
    print(f"panal {panal.__version__}")
    with panal.Runtime(threads=2, node_name="demo@127.0.0.1:7001") as rt:
        print(rt)
        for same_thread, label in ((True, "one thread"), (False, "across threads")):
            rounds = 200_000
            seconds = rt.ping_pong(rounds, same_thread=same_thread)
            print(f"  {rounds:,} round trips {label}: {seconds:.3f} s = {rounds / seconds:,.0f}/s")

        ticks = []
        t = threading.Thread(target=lambda: [ticks.append(time.sleep(0.01)) for _ in range(20)])
        t.start()
        rt.sleep(0.25)  # the GIL is released: the thread above keeps ticking
        t.join()
        print(f"  a Python thread ticked {len(ticks)} times while C++ slept 0.25 s")
    print(rt)

    with panal.Runtime(threads=1) as again:
        print(f"started again: {again}")
    try:
        again.ping_pong(1)
    except panal.NotRunning as e:
        print(f"a stopped runtime says: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
