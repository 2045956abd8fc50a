"""Tracking's response models (the request body of /collect is validated by ``domain.Batch``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from boxoffice.tracking.domain import PageCount, StatsBucket, StoredEvent


class RejectedOut(BaseModel):
    index: int
    reason: str


class CollectOut(BaseModel):
    accepted: int
    rejected: list[RejectedOut]


class SubjectOut(BaseModel):
    type: str
    id: str


class EventOut(BaseModel):
    event_id: str
    type: str
    name: str | None
    ts: datetime
    received_at: datetime
    user_id: str | None
    session_id: str
    anonymous_id: str
    url: str
    referrer: str | None
    title: str | None
    element: dict[str, str] | None
    props: dict[str, Any] | None
    browser: str
    os: str
    device: str
    is_bot: bool
    subject: SubjectOut | None
    """The event or train run the page is about, when it is one's page."""

    @classmethod
    def of(cls, event: StoredEvent) -> EventOut:
        subject = SubjectOut(type=event.subject_type, id=event.subject_id) if event.subject_type else None
        return cls(
            event_id=event.event_id,
            type=event.type,
            name=event.name,
            ts=event.ts,
            received_at=event.received_at,
            user_id=event.user_id,
            session_id=event.session_id,
            anonymous_id=event.anonymous_id,
            url=event.url,
            referrer=event.referrer,
            title=event.title,
            element=event.element,
            props=event.props,
            browser=event.browser,
            os=event.os,
            device=event.device,
            is_bot=event.is_bot,
            subject=subject,
        )


class EventPageOut(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class StatsOut(BaseModel):
    bucket_start: datetime
    type: str
    events: int
    sessions: int
    users: int

    @classmethod
    def of(cls, bucket: StatsBucket) -> StatsOut:
        return cls(
            bucket_start=bucket.bucket_start,
            type=bucket.type,
            events=bucket.events,
            sessions=bucket.sessions,
            users=bucket.users,
        )


class StatsPageOut(BaseModel):
    interval: str
    items: list[StatsOut]


class PageOut(BaseModel):
    path: str
    views: int
    sessions: int

    @classmethod
    def of(cls, page: PageCount) -> PageOut:
        return cls(path=page.path, views=page.views, sessions=page.sessions)


class PagesOut(BaseModel):
    items: list[PageOut]
