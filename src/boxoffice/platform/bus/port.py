"""The small port both bus backends implement.

Producers never call ``Bus.publish`` from a request: they write to their outbox (``UnitOfWork.publish``) and
the relay calls it. Consumers get each event at least once, in order per key (a key always maps to one
partition), and make their effect at most once with the inbox (``claim_inbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from boxoffice.platform.bus.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Record:
    """One event as a consumer received it: where it sits in the log, and the event."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope


class Consumer(Protocol):
    group: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, *, max_records: int = 200, timeout: float = 1.0) -> list[Record]:
        """Records after the group's committed positions, in log order per partition."""

    async def commit(self, records: Sequence[Record]) -> None:
        """Move the group's positions past these records (after their effects committed).

        Per partition, the records are a prefix of what ``poll`` returned for it. Where it is shorter (a
        handler failed), the next ``poll`` delivers that partition again from its first record that was not
        committed; the other partitions go on.
        """


class Bus(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the bus cannot be reached (used by /readyz)."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Append durably, in the given order; return only once the bus has them."""

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...
