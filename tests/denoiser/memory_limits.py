"""A cap on how much more memory the test process may map, for tests of inputs that ask for gigabytes."""

from __future__ import annotations

import contextlib
import resource
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def address_space_headroom(extra: int) -> Iterator[None]:
    """On Linux, let the process map at most ``extra`` more bytes meanwhile, so that code trying to allocate
    gigabytes fails at once (and the test with it) instead of swapping or being killed; elsewhere, nothing."""
    if not sys.platform.startswith("linux"):
        yield
        return
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra if hard == resource.RLIM_INFINITY else min(hard, size + extra)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
