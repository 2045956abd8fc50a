"""An httpx transport to an ASGI app in this process that streams the response body as the app sends it.

``httpx.ASGITransport`` runs the app to completion and then hands over the whole body, which never
happens for a response that does not end (server-sent events). This transport runs the app in a task,
returns as soon as the response starts, and yields each body chunk as it arrives; closing the response
tells the app the client went away (``http.disconnect``) and waits for it to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.types import ASGIApp, Message

_END = object()


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue[object], task: asyncio.Task[None], gone: asyncio.Event) -> None:
        self._chunks = chunks
        self._task = task
        self._gone = gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._chunks.get()
            if chunk is _END:
                return
            if isinstance(chunk, BaseException):
                raise chunk
            assert isinstance(chunk, bytes)
            yield chunk

    async def aclose(self) -> None:
        self._gone.set()
        try:
            async with asyncio.timeout(5):
                await self._task
        except BaseException:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port or 80),
            "client": self.client,
            "root_path": "",
        }
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[object] = asyncio.Queue()
        gone = asyncio.Event()
        sent_request = False

        async def receive() -> Message:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(bytes(message["body"]))
                if not message.get("more_body", False):
                    await chunks.put(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                await chunks.put(exc if isinstance(exc, Exception) else _END)
                if not isinstance(exc, Exception):
                    raise
            else:
                await chunks.put(_END)

        task = asyncio.create_task(run())
        try:
            message = await started
        except BaseException:
            task.cancel()
            raise
        return httpx.Response(
            status_code=message["status"],
            headers=message.get("headers", []),
            stream=_Body(chunks, task, gone),
            request=request,
        )
