"""Freed memory kept by the process while a fit runs (glibc only; a no-op elsewhere).

A fit allocates and frees arrays of hundreds of MB again and again (the near-violator cache's parameters and
scores at every refill, the working set's buffers). glibc returns each one to the kernel at once (``mmap`` above
32 MB, trimming the heap's top), so the next one is faulted in afresh. On the virtual machines this product runs
on, a page the host has not backed yet costs about 8 us: 1 GB first touched took 3-8 s, touched again 0.15 s.
While a fit runs, ``held_memory`` has glibc serve large arrays from its heap and keep what is freed (``mallopt``:
no ``mmap``, no trimming); when the last fit ends, the defaults return and ``malloc_trim`` gives the memory back.
Measured: an N=300 sign path, 20 betas to 1e-3 beta_max, 2 cores: 210.5 s -> 168.8 s, CPU 321 -> 273 s, peak RSS
2.5 -> 2.6 GB (the same allocator settings from ``GLIBC_TUNABLES`` outside the process: 192.3 s, CPU 304 s).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4                  # glibc's mallopt parameters (malloc.h)
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
_lock = threading.Lock()
_holders = [0]


def _libc():
    """glibc's ``mallopt`` and ``malloc_trim``, or None (another C library, or none found)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


@contextmanager
def held_memory():
    """Within it (re-entrant, thread-safe: fits in several threads share it), freed memory stays with the process."""
    if _LIBC is None:
        yield
        return
    with _lock:
        if not _holders[0]:
            _LIBC.mallopt(M_MMAP_MAX, 0)
            _LIBC.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2 ** 31 - 1))
        _holders[0] += 1
    try:
        yield
    finally:
        with _lock:
            _holders[0] -= 1
            if not _holders[0]:
                _LIBC.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                _LIBC.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                _LIBC.malloc_trim(0)
