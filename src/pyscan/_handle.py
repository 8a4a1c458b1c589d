"""ScanHandle: one running scan, awaitable for its report and async-iterable for its results.

A handle is lazy: creating it starts nothing. The scan starts on the first ``await`` or
``async for`` and runs as a task of the current event loop. Results reach an iterator as
soon as they are decided; breaking out of the ``async for`` (or cancelling the task that
iterates) cancels the scan, and the scan's own cleanup closes every socket it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
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
    ) -> None:
        self._run = run
        self._progress = progress
        self._task: asyncio.Task[ScanReport] | None = None
        self._queue: asyncio.Queue[Any] | None = None

    def _emit(self, item: T) -> None:
        if self._queue is not None:
            self._queue.put_nowait(item)

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
        return self._progress()

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
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue = queue
        task = self.start()
        task.add_done_callback(lambda _t: queue.put_nowait(_DONE))
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                yield item
            task.result()  # re-raise the scan's error, if it failed
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
