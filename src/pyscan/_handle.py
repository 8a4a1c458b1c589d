"""ScanHandle: one running scan, awaitable for its report and async-iterable for its results.

A handle is lazy: creating it starts nothing. The scan starts on the first ``await`` or
``async for`` and runs as a task of the current event loop. Results reach an iterator as
soon as they are decided; breaking out of the ``async for`` (or cancelling the task that
iterates) cancels the scan, and the scan's own cleanup closes every socket it opened.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable
from typing import Any, Generic, TypeVar

import attrs

from pyscan._models import ScanReport

__all__ = ["Emit", "ScanHandle", "ScanProgress"]

T = TypeVar("T")
Emit = Callable[[T], None]

_DONE: Any = object()


@attrs.frozen
class ScanProgress:
    """How far a scan has come: the current phase and its probes decided out of the total."""

    phase: str
    done: int
    total: int
    elapsed: float
    packets_sent: int = 0
    #: Where a run that stopped now could be resumed (``resume_from=``, with the same
    #: targets, ports, scan type, ``seed`` and ``shard``) without missing a probe: the first
    #: position of the port scan's probe order whose probe is not decided yet, or whose
    #: result an iterating consumer has not taken yet. ``None`` outside a port scan phase,
    #: and wherever a rerun could not take the scan up: with host discovery, with more than
    #: one scan type, with an order that is not reproducible (no ``seed`` or ``shard``, and
    #: ports randomized), and with version detection (open ports reach the consumer after it).
    resume_from: int | None = None

    @property
    def fraction(self) -> float:
        """Share of the current phase done, 0.0 to 1.0."""
        return self.done / self.total if self.total else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left in the current phase at the rate so far (None before any progress)."""
        if not self.done or self.elapsed <= 0:
            return None
        return self.elapsed * (self.total - self.done) / self.done


class ScanHandle(Generic[T]):
    """A scan that is awaitable (giving the :class:`ScanReport`) and async-iterable.

    ``report = await handle`` runs the scan to the end; ``async for r in handle`` yields each
    result (a :class:`PortResult` or, for discovery, a :class:`HostResult`) as soon as it is
    decided, after which ``await handle`` gives the full report without scanning again.
    """

    def __init__(
        self,
        run: Callable[[Emit[T] | None], Coroutine[Any, Any, ScanReport]],
        progress: Callable[[], ScanProgress] | None = None,
        resume: Callable[[Iterable[Any]], int | None] | None = None,
    ) -> None:
        self._run = run
        self._progress = progress
        # the resume point counting results decided but not yet taken by the iterator
        self._resume = resume
        self._task: asyncio.Task[ScanReport] | None = None
        # results decided and not yet taken by the iterator, and its wake-up
        self._queue: collections.deque[Any] | None = None
        self._arrived: asyncio.Event | None = None

    def _emit(self, item: T) -> None:
        if self._queue is not None:
            self._queue.append(item)
            assert self._arrived is not None
            self._arrived.set()

    def start(self) -> asyncio.Task[ScanReport]:
        """Start the scan now (in the running loop) and return its task."""
        if self._task is None:
            # ``None`` when nobody iterates: the scan need not hand over results one by one
            # (iterating after the start is refused, so this is known here)
            emit = self._emit if self._queue is not None else None
            self._task = asyncio.get_running_loop().create_task(self._run(emit))
        return self._task

    @property
    def started(self) -> bool:
        """Whether the scan has been started."""
        return self._task is not None

    def done(self) -> bool:
        """Whether the scan has finished (successfully, with an error or cancelled)."""
        return self._task is not None and self._task.done()

    def progress(self) -> ScanProgress:
        """A snapshot of the scan's progress (phase ``"idle"`` before it starts)."""
        if self._progress is None or self._task is None:
            return ScanProgress("idle", 0, 0, 0.0)
        progress = self._progress()
        if progress.resume_from is not None and self._queue and self._resume is not None:
            # results the iterator has not taken (it stopped, or is behind) are not done
            progress = attrs.evolve(progress, resume_from=self._resume(list(self._queue)))
        return progress

    def cancel(self) -> None:
        """Stop the scan; awaiting the handle afterwards raises CancelledError."""
        if self._task is not None:
            self._task.cancel()

    def __await__(self) -> Generator[Any, None, ScanReport]:
        return self.start().__await__()

    async def report(self) -> ScanReport:
        """Run the scan to the end and return its report (``asyncio.run(h.report())``)."""
        return await self.start()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        if self._task is not None:
            raise RuntimeError("iterate a scan before awaiting it: its results are gone")
        queue: collections.deque[Any] = collections.deque()
        arrived = asyncio.Event()
        self._queue, self._arrived = queue, arrived

        def finished(_task: object) -> None:
            queue.append(_DONE)
            arrived.set()

        task = self.start()
        task.add_done_callback(finished)
        try:
            while True:
                while not queue:
                    arrived.clear()
                    await arrived.wait()
                item = queue.popleft()
                if item is _DONE:
                    break
                yield item
            task.result()  # re-raise the scan's error, if it failed
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
