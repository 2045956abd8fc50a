"""Ticket PDFs render in worker processes; a worker that dies must not stop PDFs for good."""

from __future__ import annotations

import asyncio
import os
import signal

from boxoffice.tickets.pdf import PdfRenderer, TicketDocument

DETAILS = {"name": "Aurora Live", "venue": "Paradiso", "city": "Amsterdam", "starts_at": "2027-01-02T19:30:00Z"}


def ticket(n: int) -> TicketDocument:
    return TicketDocument(f"ticket-{n}", "order-1", "event", "Ann Fan", f"code-{n}", f"A-{n}", "Floor", DETAILS)


async def test_a_killed_pdf_worker_is_replaced_and_the_batch_still_renders() -> None:
    render = PdfRenderer(1)
    try:
        first = await render([ticket(1)])
        assert first[0] is not None and first[0].startswith(b"%PDF")
        pool = render._executor()
        for pid in list(pool._processes):  # the worker dies, as an out-of-memory kill would do it
            os.kill(pid, signal.SIGKILL)
        again = await render([ticket(2), ticket(3)])
        assert all(pdf is not None and pdf.startswith(b"%PDF") for pdf in again)
        assert render._executor() is not pool  # a new pool took over
    finally:
        render.close()


async def test_pdf_workers_run_at_a_lower_priority_than_the_service() -> None:
    """Rendering ahead of downloads yields the cores to the buyers' requests (``BOXOFFICE_TICKETS_PDF_NICE``)."""
    render = PdfRenderer(1, nice=7)
    try:
        [pdf] = await render([ticket(1)])
        assert pdf is not None and pdf.startswith(b"%PDF")
        [worker] = list(render._executor()._processes)
        assert os.getpriority(os.PRIO_PROCESS, worker) == os.getpriority(os.PRIO_PROCESS, 0) + 7
    finally:
        render.close()


async def test_cancelling_a_rendering_leaves_the_pools_work_item_to_the_pool() -> None:
    """A service stopping cancels its tasks mid-rendering, then closes the renderer. A work item cancelled from
    outside the pool made Python 3.11's pool raise InvalidStateError in its thread when its workers were then
    terminated (CPython gh-107219): the pool alone cancels or fails what it holds."""
    render = PdfRenderer(1)
    try:
        await render([ticket(1)])  # the worker has started
        pool = render._executor()
        tasks = [asyncio.create_task(render([ticket(n) for n in range(20)])) for _ in range(6)]
        await asyncio.sleep(0)  # submitted: the first ones go to the worker, the others wait in the pool
        waiting = list(pool._pending_work_items.values())
        assert len(waiting) == 6
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)
        assert not any(item.future.cancelled() for item in waiting)
    finally:
        render.close()
