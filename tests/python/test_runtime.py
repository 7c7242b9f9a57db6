"""The runtime from Python: start in the background, stop, start again, GIL released."""
import re
import threading
import time
from pathlib import Path

import pytest

import panal


def test_version_is_set():
    assert panal.__version__ == "0.1.0"


def test_start_stop_and_start_again_in_one_interpreter():
    for _ in range(3):
        rt = panal.Runtime(threads=2)
        assert rt.running
        assert rt.threads == 2
        assert rt.ping_pong(1000) > 0
        rt.stop()
        assert not rt.running
        rt.stop()  # idempotent
        assert rt.process_count == 0


def test_context_manager_stops_the_runtime():
    with panal.Runtime(threads=1) as rt:
        rt.ping_pong(10)
        assert "running" in repr(rt)
    assert not rt.running
    assert "stopped" in repr(rt)


def test_gil_is_released_while_cpp_runs():
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    with panal.Runtime(threads=2) as rt:
        t = threading.Thread(target=count)
        t.start()
        before = ticks
        rt.sleep(0.3)  # blocks this thread in C++ for 0.3 s
        during = ticks - before
        stop.set()
        t.join()
    # With the GIL held for 0.3 s the counter could not move at all.
    assert during >= 10, f"the other Python thread only ran {during} times"


def test_a_stopped_runtime_raises_not_running():
    rt = panal.Runtime(threads=1)
    rt.stop()
    with pytest.raises(panal.NotRunning) as info:
        rt.ping_pong(1)
    assert isinstance(info.value, panal.Error)
    assert "stopped" in str(info.value)


def test_bad_arguments_raise_typed_errors():
    with panal.Runtime(threads=1) as rt:
        with pytest.raises(panal.BadArgument):
            rt.ping_pong(-1)
    with pytest.raises(ValueError):
        panal.set_log_level("loud")


def test_runtimes_in_two_python_threads():
    results = []

    def work():
        with panal.Runtime(threads=1) as rt:
            results.append(rt.ping_pong(2000))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(r > 0 for r in results)


def test_error_classes_match_the_cpp_codes():
    # The numbering of panal::errc in src/util/error.h.
    header = (Path(__file__).resolve().parents[2] / "src" / "util" / "error.h").read_text()
    codes = {name: int(num) for name, num in re.findall(r"^\s+(\w+) = (\d+),", header, re.M)}
    assert codes["timeout"] == panal.Timeout.code
    for name, num in codes.items():
        if name == "ok":
            continue
        cls = panal.errors.error_class(num)
        assert cls is not panal.Error, f"errc::{name} ({num}) has no Python exception class"
        assert issubclass(cls, panal.Error)
    assert panal.errors.error_class(999) is panal.Error
