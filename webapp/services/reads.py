"""Reads of jobs for waiting requests, coalesced: the waiters one announcement wakes share one query."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import anyio

from webapp.models import Job

Fetch = Callable[[Sequence[uuid.UUID]], dict[uuid.UUID, Job]]


class CoalescedReads:
    """One query in flight at a time; the ids asked for meanwhile go together in the next one.

    Meant for one event loop (a web process's); the query itself runs in a worker thread.
    """

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self._wanted: dict[uuid.UUID, list[asyncio.Future[Job | None]]] = {}
        self._draining: asyncio.Task[None] | None = None

    async def get(self, job_id: uuid.UUID) -> Job | None:
        """The job as stored now, or None if there is no such job."""
        loop = asyncio.get_running_loop()
        wanted: asyncio.Future[Job | None] = loop.create_future()
        self._wanted.setdefault(job_id, []).append(wanted)
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        return await wanted

    async def _drain(self) -> None:
        try:
            while self._wanted:
                # Let the other waiters woken in this turn of the loop add their ids first.
                await asyncio.sleep(0)
                wanted, self._wanted = self._wanted, {}
                try:
                    jobs = await anyio.to_thread.run_sync(self.fetch, list(wanted))
                except Exception as exc:
                    for futures in wanted.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for job_id, futures in wanted.items():
                    for future in futures:
                        if not future.done():  # its request may have gone away meanwhile
                            future.set_result(jobs.get(job_id))
        finally:
            self._draining = None
