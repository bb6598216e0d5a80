"""Ordered parallel map over forked workers (state is set in module globals before the fork)."""

from __future__ import annotations

import multiprocessing as mp
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["imap_ordered"]

T = TypeVar("T")
R = TypeVar("R")


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a RuntimeError carrying its text.

    A result that fails to unpickle hangs a multiprocessing pool, so nothing else may travel back.
    (labelforge's input errors pickle, and arrive as themselves.)
    """
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _run_chunk(fn: Callable[[T], R], chunk: list[T]) -> tuple[bool, Any]:
    try:
        return True, [fn(x) for x in chunk]
    except Exception as exc:
        return False, _portable(exc)


def imap_ordered(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, chunksize: int = 1, ahead: int = 2
) -> Iterator[R]:
    """``map(fn, items)`` in order; with ``workers > 1`` over a fork pool that is torn down on exit or error.

    Results come back in input order whatever the worker count, so a caller that writes them in that
    order produces the same bytes with 1 or N workers. At most ``ahead`` chunks per worker are in flight:
    a slow consumer (the shard writer) holds back the workers instead of piling results up in memory.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    # fork: workers inherit the caller's prepared globals (index, dataset) without pickling them.
    pool = mp.get_context("fork").Pool(workers)
    try:
        pending: deque = deque()
        it = iter(items)
        limit = max(1, ahead * workers)

        def submit() -> bool:
            chunk = [x for _, x in zip(range(chunksize), it, strict=False)]
            if chunk:
                pending.append(pool.apply_async(_run_chunk, (fn, chunk)))
            return bool(chunk)

        while len(pending) < limit and submit():
            pass
        while pending:
            ok, results = pending.popleft().get()
            if not ok:
                raise results
            submit()
            yield from results
        pool.close()
    finally:
        pool.terminate()
        pool.join()
