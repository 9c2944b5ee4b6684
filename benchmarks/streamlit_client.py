"""A light Streamlit client for load tests: one websocket per visitor, speaking the browser's own protocol.

The browser talks to `ws://HOST:PORT/_stcore/stream` in protobuf. It sends `BackMsg`s, above all `rerun_script`
with a `ClientState` (the page, the widget values, and the fragment when only a fragment reruns), and receives
`ForwardMsg`s: `new_session`, `delta`s that add elements, `script_finished`, `auto_rerun` for fragments that refresh
themselves, ... `Session` sends what Chromium sends (copied from the frames a real Draw page stroke sent: page name
on the first run; then page_script_hash, the widget states and fragment_id; the same context_info every time) and
renders nothing, so one core of clients keeps many sessions busy. Like a new browser it first downloads the page and
the frontend's scripts; like the browser it fetches the pictures (`/media`) a run names, and reruns a self-refreshing
fragment on the interval the server asks for.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

import aiohttp
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

SUCCESS = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)


@dataclass
class Reply:
    """What the server sent for one run: (arrival time, message) pairs, up to its successful `script_finished`."""

    sent: float  # when the request left (for a new session: before connecting)
    messages: list[tuple[float, ForwardMsg]] = field(default_factory=list)

    @property
    def finished(self) -> float:
        return self.messages[-1][0]

    def elements(self):
        """(arrival time, element type, element) of every element the run added."""
        for arrived, msg in self.messages:
            if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
                kind = msg.delta.new_element.WhichOneof("type")
                yield arrived, kind, getattr(msg.delta.new_element, kind)


def widget_key(widget_id: str) -> str:
    """The `key=` a widget was made with, from its id ("$$ID-<hash>-<key>")."""
    return widget_id.split("-", 2)[-1]


# Connect, send a run, collect the answer


class Session:
    """One visitor's Streamlit session over its own websocket (and its own HTTP connections, like a new browser)."""

    def __init__(self, url: str):
        self.url, self.http = url, None
        self.page_script_hash = ""
        self.widgets: dict[str, tuple[str, str]] = {}  # key → (widget id, fragment id), as last rendered
        self.components: dict[str, tuple[str, str]] = {}  # custom component name → (widget id, fragment id)
        self._context = ContextInfo(timezone="UTC", timezone_offset=0, locale="en-US", is_embedded=False,
                                    color_scheme="light")
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._timers: dict[str, asyncio.Task] = {}
        self._ws = self._reader = None

    async def open(self, page: str, *, query: str = "", timeout: float = 300) -> Reply:
        """Load the frontend, connect and run `page` (its URL path, e.g. "draw") as a new browser landing there does."""
        started = time.perf_counter()
        self._context.url = f"{self.url}/{page}" + (f"?{query}" if query else "")
        self.http = aiohttp.ClientSession()
        await self._load_frontend(self._context.url)
        self._ws = await self.http.ws_connect(f"{self.url.replace('http', 'ws', 1)}/_stcore/stream",
                                              protocols=("streamlit",), max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        return await self._run(ClientState(query_string=query, page_name=page, context_info=self._context),
                               timeout=timeout, started=started)

    async def rerun(self, widgets=(), *, fragment_id: str = "", timeout: float = 300) -> Reply:
        """Rerun the page (or one fragment of it) with these `WidgetState`s, as a widget change does."""
        return await self._run(self._state(widgets, fragment_id=fragment_id), timeout=timeout)

    async def click(self, key: str, *, timeout: float = 300) -> Reply:
        """Press the button made with `key=key`."""
        widget_id, fragment_id = self.widgets[key]
        return await self.rerun([WidgetState(id=widget_id, trigger_value=True)], fragment_id=fragment_id,
                                timeout=timeout)

    async def next_message(self) -> tuple[float, ForwardMsg]:
        """The next message the server sent (for watching a page that refreshes itself)."""
        arrived, msg = await self._inbox.get()
        if msg is None:
            raise ConnectionError("the server closed the websocket")
        return arrived, msg

    async def fetch_media(self, reply: Reply) -> float:
        """Download every picture the run names, as the browser does to show them; returns when the last arrived."""
        urls = [image.url for _, kind, element in reply.elements() if kind == "imgs" for image in element.imgs]
        for url in urls:
            async with self.http.get(self.url + url) as response:
                response.raise_for_status()
                await response.read()
        return time.perf_counter()

    async def close(self) -> None:
        self._stop_timers(list(self._timers))
        if self._ws is not None:
            await self._ws.close()
            await self._reader
        if self.http is not None:
            await self.http.close()

    async def _load_frontend(self, page_url: str) -> None:
        """The page's HTML, then every script and style it names, at once (a browser then loads more scripts as
        elements need them, and takes them from its cache on a later visit: neither is done here)."""
        async with self.http.get(page_url) as response:
            response.raise_for_status()
            html = await response.text()

        async def get(path):
            async with self.http.get(f"{self.url}/{path}") as response:
                response.raise_for_status()
                await response.read()

        await asyncio.gather(*(get(path) for path in re.findall(r'(?:src|href)="\./([^"]+\.(?:js|css))"', html)))

    def _state(self, widgets=(), *, fragment_id: str = "", auto: bool = False) -> ClientState:
        state = ClientState(page_script_hash=self.page_script_hash, fragment_id=fragment_id, is_auto_rerun=auto,
                            context_info=self._context)
        state.widget_states.widgets.extend(widgets)
        return state

    async def _run(self, state: ClientState, *, timeout: float, started: float | None = None) -> Reply:
        reply = Reply(started or time.perf_counter())
        await self._ws.send_bytes(BackMsg(rerun_script=state).SerializeToString())
        async with asyncio.timeout(timeout):
            while True:
                reply.messages.append(await self.next_message())
                msg = reply.messages[-1][1]
                if msg.WhichOneof("type") == "script_finished" and msg.script_finished in SUCCESS:
                    return reply

    # Read what the server sends; learn widget ids and fragments from it

    async def _read(self) -> None:
        async for frame in self._ws:
            if frame.type is not aiohttp.WSMsgType.BINARY:
                break
            arrived = time.perf_counter()
            msg = ForwardMsg.FromString(frame.data)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_script_hash = msg.new_session.page_script_hash  # the main script's until navigation
                if not msg.metadata.run.fragment_ids:  # a whole-page run: the browser drops its refresh timers
                    self._stop_timers(list(self._timers))
            elif kind == "navigation":
                self.page_script_hash = msg.navigation.page_script_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._learn(msg.delta)
            elif kind == "auto_rerun":
                fragment_id = msg.auto_rerun.fragment_id
                if fragment_id not in self._timers:
                    self._timers[fragment_id] = asyncio.create_task(self._refresh(msg.auto_rerun.interval,
                                                                                  fragment_id))
            elif kind == "stop_auto_rerun":
                self._stop_timers(msg.stop_auto_rerun.fragment_ids)
            self._inbox.put_nowait((arrived, msg))
        self._inbox.put_nowait((time.perf_counter(), None))

    def _learn(self, delta) -> None:
        kind = delta.new_element.WhichOneof("type")
        widget_id = getattr(getattr(delta.new_element, kind), "id", "")
        if widget_id:
            self.widgets[widget_key(widget_id)] = (widget_id, delta.fragment_id)
            if kind == "bidi_component":
                self.components[delta.new_element.bidi_component.component_name] = (widget_id, delta.fragment_id)

    def _stop_timers(self, fragment_ids) -> None:
        for fragment_id in fragment_ids:
            timer = self._timers.pop(fragment_id, None)
            if timer is not None:
                timer.cancel()

    async def _refresh(self, interval: float, fragment_id: str) -> None:
        """Rerun a fragment every `interval` seconds, as the browser's timer does (without waiting for answers)."""
        while True:
            await asyncio.sleep(interval)
            await self._ws.send_bytes(BackMsg(rerun_script=self._state(fragment_id=fragment_id, auto=True))
                                      .SerializeToString())
