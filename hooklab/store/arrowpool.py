"""Where Arrow's allocations go while the history is read: the system allocator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

_pools_lock = threading.Lock()
_pools_in_use = 0
_pool_before: pa.MemoryPool | None = None


@contextmanager
def system_memory() -> Iterator[None]:
    """Arrow's allocations in the system allocator while a read runs (in any thread; the
    default allocator is put back when the last read ends). Arrow's own (mimalloc) makes
    about 10 MB resident on its first use in a process, a third of a small read's memory;
    the system's holds what is asked. Each buffer goes back to the allocator it came from."""
    global _pools_in_use, _pool_before
    with _pools_lock:
        if _pools_in_use == 0:
            _pool_before = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
        _pools_in_use += 1
    try:
        yield
    finally:
        with _pools_lock:
            _pools_in_use -= 1
            if _pools_in_use == 0 and _pool_before is not None:
                pa.set_memory_pool(_pool_before)
                _pool_before = None
