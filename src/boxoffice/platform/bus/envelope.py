"""The CloudEvents-shaped envelope: ``{id, type, source, time, key, data, traceparent}``."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uuid_utils

from boxoffice.platform.jsonutil import dumps, loads
from boxoffice.platform.tracing import current_traceparent


def uuid7() -> str:
    return str(uuid_utils.uuid7())


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    type: str
    source: str
    time: datetime
    key: str
    data: dict[str, Any]
    topic: str
    traceparent: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return dumps(
            {
                "id": self.id,
                "type": self.type,
                "source": self.source,
                "time": self.time,
                "key": self.key,
                "data": self.data,
                "traceparent": self.traceparent,
                **self.extensions,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str, *, topic: str) -> Envelope:
        body = loads(raw)
        known = {"id", "type", "source", "time", "key", "data", "traceparent"}
        return cls(
            id=body["id"],
            type=body["type"],
            source=body["source"],
            time=datetime.fromisoformat(body["time"].replace("Z", "+00:00")),
            key=body["key"],
            data=body["data"],
            topic=topic,
            traceparent=body.get("traceparent"),
            extensions={k: v for k, v in body.items() if k not in known},
        )

    def outbox_row(self) -> dict[str, Any]:
        return {"event_id": self.id, "topic": self.topic, "key": self.key, "payload": self.to_json().decode()}

    def partition(self, partitions: int) -> int:
        """The partition of this event's key: the same key always lands in the same partition."""
        return zlib.crc32(self.key.encode()) % partitions


def new_event(
    type_: str, *, source: str, key: str, data: dict[str, Any], topic: str, traceparent: str | None = None
) -> Envelope:
    return Envelope(
        id=uuid7(),
        type=type_,
        source=source,
        time=datetime.now(UTC),
        key=key,
        data=data,
        topic=topic,
        traceparent=traceparent if traceparent is not None else current_traceparent(),
    )
