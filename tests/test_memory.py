"""analysis._memory.held_memory: freed memory stays with the process while fits run, and goes back after."""
import threading

import numpy as np
import pytest

from analysis import _memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


pytestmark = pytest.mark.skipif(_memory._LIBC is None, reason="glibc's mallopt only")


def test_freed_arrays_stay_while_held_and_go_back_after():
    """A 400 MB array freed inside the context leaves the resident size where it was; the last exit (two holders
    in two threads) gives it back; outside, the same array freed gives it back at once (mmap)."""
    def touch_and_free():
        a = np.ones(50 * 2**20)                   # 400 MB, touched
        del a

    base = _rss_mb()
    touch_and_free()
    assert _rss_mb() < base + 100                  # outside: returned at once
    entered, leave = threading.Event(), threading.Event()

    def other():
        with _memory.held_memory():
            entered.set()
            leave.wait(30)

    t = threading.Thread(target=other)
    t.start()
    entered.wait(30)
    with _memory.held_memory():
        touch_and_free()
        assert _rss_mb() > base + 300              # held
    assert _rss_mb() > base + 300                  # the other thread still holds
    leave.set()
    t.join()
    assert _memory._holders[0] == 0
    assert _rss_mb() < base + 100                  # the last exit trimmed it
