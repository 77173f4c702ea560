"""The one composition root: engine, ingest endpoint, rooms, simulator, synchrony, dashboards.

Every entry point builds the lab here: ``sensocto-lab demo`` / ``serve`` / ``record``,
``panel serve panel_apps/*.py`` (:func:`panel_context`, options from the environment)
and a notebook::

    async with await LabApp.start(LabOptions(data_dir="session-1", simulate=8)) as lab:
        print(*lab.describe(), sep="\\n")
        ...

Everything runs on the engine's loop; closing the app unwinds what was started in
reverse order (an :class:`~contextlib.AsyncExitStack`): the protocol, the simulator,
the synchrony, the dashboards, the endpoint, the rooms, then the engine (which flushes
and fsyncs).

The demo tells a story (``LabOptions(protocol=DEMO_PROTOCOL, ...)``): a scripted
protocol (``engine.run_protocol``) cycles baseline → coupled task → recovery, and the
simulated group's breathing coupling follows the condition running
(``SimulatedGroup.follow_conditions``), so the room's R visibly falls and rises.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensocto_lab.engine import topics
from sensocto_lab.engine.engine import Engine
from sensocto_lab.engine.experiment import ProtocolRun
from sensocto_lab.engine.synchrony import LiveSynchrony
from sensocto_lab.errors import ConfigError, ValidationError
from sensocto_lab.events import condition_phase
from sensocto_lab.net.config import ServerConfig
from sensocto_lab.net.server import IngestServer, serve
from sensocto_lab.rooms import LAB_USER, RoomStore, format_code
from sensocto_lab.sources.simulated import SimulatedGroup
from sensocto_lab.ui.dashboard.context import Context
from sensocto_lab.ui.dashboard.pages import DashboardContext
from sensocto_lab.ui.dashboard.remote import RemoteContext
from sensocto_lab.ui.dashboard.server import DashboardServer, login_options, serve_dashboards

__all__ = [
    "DEMO_COUPLING",
    "DEMO_PROTOCOL",
    "LabApp",
    "LabOptions",
    "ProtocolMarkers",
    "close_panel_context",
    "panel_context",
]

#: The demo's protocol: one cycle of ``(condition, seconds)``, repeated; 2¼ minutes.
DEMO_PROTOCOL: tuple[tuple[str, float], ...] = (
    ("baseline", 45.0),
    ("task", 45.0),
    ("recovery", 45.0),
)
#: The simulated group's coupling K (rad/s) during each of the demo's conditions:
#: uncoupled at baseline (R drifts to chance, ~0.3 for 8), locked in the task (R → 1).
DEMO_COUPLING: dict[str, float] = {"baseline": 0.0, "task": 2.0, "recovery": 0.1}
#: Markers the demo sets ``(seconds into the condition, label)``.
DEMO_MARKERS: dict[str, tuple[float, str]] = {"task": (20.0, "bell")}


@dataclass(frozen=True, slots=True)
class LabOptions:
    """What to run.

    Attributes
    ----------
    data_dir
        Where recordings and room metadata live.
    host, port
        Where the ingest endpoint (and ``/health``) listens; port 0 picks a free one,
        ``None`` runs without an endpoint.
    dashboard_port
        Port of the Panel dashboards; ``None`` runs without them, 0 picks a free one.
    tokens, auth
        Ingest tokens devices must present; ``auth=False`` accepts any device.
    simulate, room, coupling
        A simulated group of ``simulate`` participants in ``room`` with coupling K (rad/s).
    basic_auth
        The dashboards ask who is watching (a shared password, or a JSON file of user
        → password); members of a room then open it without its code.
    protocol, protocol_cycles, protocol_coupling
        A scripted protocol of ``room`` (``(condition, seconds)`` pairs, e.g.
        :data:`DEMO_PROTOCOL`) run ``protocol_cycles`` times, and the simulated
        group's coupling per condition (default :data:`DEMO_COUPLING`).
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int | None = 4000
    dashboard_port: int | None = 5006
    tokens: frozenset[str] = field(default_factory=frozenset)
    auth: bool = True
    simulate: int = 0
    room: str = "lab"
    coupling: float = 1.5
    basic_auth: str | None = None
    protocol: tuple[tuple[str, float], ...] = ()
    protocol_cycles: int = 40
    protocol_coupling: Mapping[str, float] = field(default_factory=lambda: dict(DEMO_COUPLING))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LabOptions:
        """The options of a ``panel serve`` process, from ``SENSOCTO_LAB_*`` variables.

        ``SENSOCTO_LAB_DATA`` (data directory, default ``sensocto-data``),
        ``SENSOCTO_LAB_ROOM`` (default ``lab``), ``SENSOCTO_LAB_SIMULATE`` (participants,
        default 0), ``SENSOCTO_LAB_PORT`` (an ingest endpoint on that port; default none).
        The dashboards are ``panel serve``'s own, so ``dashboard_port`` is ``None``.
        """
        env = os.environ if environ is None else environ

        def number(name: str, default: str) -> int:
            raw = env.get(name, default)
            try:
                return int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None

        port = env.get("SENSOCTO_LAB_PORT")
        return cls(
            data_dir=Path(env.get("SENSOCTO_LAB_DATA", "sensocto-data")),
            room=env.get("SENSOCTO_LAB_ROOM", "lab"),
            simulate=number("SENSOCTO_LAB_SIMULATE", "0"),
            port=None if port is None else number("SENSOCTO_LAB_PORT", port),
            dashboard_port=None,
        )


class LabApp:
    """The parts of a running lab; make one with :meth:`start`, end it with :meth:`close`."""

    def __init__(
        self,
        options: LabOptions,
        engine: Engine,
        rooms: RoomStore,
        server: IngestServer | None,
        dashboards: DashboardServer | None,
        group: SimulatedGroup | None,
        synchrony: LiveSynchrony,
        stack: contextlib.AsyncExitStack,
        protocol: ProtocolRun | None = None,
        admin_token: str = "",
    ) -> None:
        self.options = options
        self.engine = engine
        self.rooms = rooms
        self.server = server
        self.dashboards = dashboards
        self.group = group
        self.synchrony = synchrony
        self.protocol = protocol
        self._stack = stack
        #: Opens ``/health`` in full (sensor ids, errors) and every room's viewer channel;
        #: devices' ingest tokens do too. Printed by :meth:`describe` for the operator.
        self.admin_token = admin_token

    @classmethod
    async def start(cls, options: LabOptions) -> LabApp:
        """Start the engine, rooms, endpoint, simulator, room synchrony and dashboards."""
        stack = contextlib.AsyncExitStack()
        admin_token = secrets.token_urlsafe(16)
        try:
            engine = await Engine.start(options.data_dir, thread=False)
            stack.push_async_callback(engine.close)
            rooms = RoomStore(options.data_dir, clock=engine.clock)
            stack.callback(rooms.close)
            _ensure_room(rooms, options.room)
            server = None
            if options.port is not None:
                config = ServerConfig(
                    tokens=options.tokens,
                    require_token=options.auth,
                    default_room=options.room,
                    # the operator's token (printed by describe): /health in full, every room
                    viewer_tokens=options.tokens | {admin_token},
                )
                server = await serve(
                    engine, host=options.host, port=options.port, config=config, rooms=rooms
                )
                stack.push_async_callback(server.close)
            dashboards = None
            if options.dashboard_port is not None:
                dashboards = await serve_dashboards(
                    engine,
                    rooms=rooms,
                    port=options.dashboard_port,
                    address=options.host,
                    **login_options(options.basic_auth),
                )
                stack.push_async_callback(dashboards.stop)
            synchrony = await LiveSynchrony.start(engine, options.room)
            stack.push_async_callback(synchrony.close)
            if dashboards is not None and isinstance(dashboards.context, DashboardContext):
                dashboards.context.synchrony[options.room] = synchrony
            group = None
            if options.simulate:
                coupling = options.coupling
                if options.protocol:
                    coupling = options.protocol_coupling.get(options.protocol[0][0], coupling)
                group = await SimulatedGroup.start(
                    engine, options.simulate, room=options.room, coupling=coupling
                )
                stack.push_async_callback(group.stop, unregister=False)
                for sensor_id in group.sensor_ids:
                    rooms.assign_sensor(options.room, sensor_id, by=LAB_USER)
            protocol = None
            if options.protocol:
                if group is not None:
                    await group.follow_conditions(options.protocol_coupling)
                    markers = ProtocolMarkers(engine, options.room)
                    await markers.start()
                    stack.push_async_callback(markers.stop)
                steps = options.protocol * max(1, options.protocol_cycles)
                protocol = await engine.run_protocol(options.room, steps)
                stack.push_async_callback(protocol.cancel)
            return cls(
                options,
                engine,
                rooms,
                server,
                dashboards,
                group,
                synchrony,
                stack,
                protocol,
                admin_token,
            )
        except BaseException:
            await stack.aclose()
            raise

    def describe(self) -> list[str]:
        """Human-readable lines: where everything is and how to join the room."""
        opts = self.options
        room = self.rooms.room(opts.room)
        lines = [f"data directory   {opts.data_dir.resolve()}"]
        if self.server is not None:
            lines += [
                f"ingest endpoint  ws://{opts.host}:{self.server.port}/socket/websocket"
                + ("" if opts.auth else "  (no token required)"),
                f"health           http://{opts.host}:{self.server.port}/health"
                f"?token={self.admin_token}",
            ]
        lines.append(f"room             {room.room_id}  join code {format_code(room.join_code)}")
        if self.dashboards is not None:
            lines.append(
                f"dashboard        {self.dashboards.room_url(room.room_id, room.join_code)}"
            )
        if self.group is not None:
            lines.append(
                f"simulated group  {len(self.group.sensor_ids)} participants, "
                f"coupling K={self.group.coupling:g}"
            )
        lines.append(f"synchrony        R of room {opts.room} as sensor {self.synchrony.sensor_id}")
        return lines

    def dashboard_context(self) -> DashboardContext:
        """What the room and lobby pages of this lab read (for ``panel serve``)."""
        return DashboardContext(
            engine=self.engine,
            rooms=self.rooms,
            clock=self.engine.clock,
            synchrony={self.options.room: self.synchrony},
        )

    async def close(self) -> None:
        """Stop everything started, in reverse order; the engine last (it flushes)."""
        await self._stack.aclose()

    async def __aenter__(self) -> LabApp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class ProtocolMarkers:
    """Records the demo's markers (:data:`DEMO_MARKERS`) some seconds into their condition.

    Follows the room's ``events:{room}`` topic (a task the engine owns); markers are
    recorded with ``source="protocol"``. The group's coupling follows the conditions
    by itself (``SimulatedGroup.follow_conditions``).
    """

    def __init__(self, engine: Engine, room: str) -> None:
        self.engine = engine
        self.room = room
        self.task_name = f"protocol-markers:{room}"
        self._marks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start following."""
        await self.engine.start_task(self.task_name, self._follow)

    async def stop(self) -> None:
        """Stop following (pending markers are dropped)."""
        for task in list(self._marks):
            task.cancel()
        if not self.engine.closed:
            await self.engine.stop_task(self.task_name)

    async def _follow(self) -> None:
        sub = self.engine.bus.subscribe(topics.events(self.room), maxsize=256)
        try:
            async for event in sub:
                if condition_phase(event.kind, event.value) != "begin":
                    continue
                if event.label in DEMO_MARKERS:
                    delay, label = DEMO_MARKERS[event.label]
                    task = asyncio.get_running_loop().create_task(self._mark_later(delay, label))
                    self._marks.add(task)
                    task.add_done_callback(self._marks.discard)
        finally:
            sub.close()

    async def _mark_later(self, delay_s: float, label: str) -> None:
        await self.engine.clock.sleep(delay_s)
        with contextlib.suppress(Exception):  # the engine may be closing
            await self.engine.mark(label, room=self.room, source="protocol")


def _ensure_room(rooms: RoomStore, room_id: str) -> None:
    """Create ``room_id`` owned by the lab unless it exists (it persists across runs)."""
    try:
        rooms.room(room_id)
    except ValidationError as exc:
        if exc.reason != "unknown_room":
            raise
        rooms.create_room(room_id, owner=LAB_USER)


#: The context of a ``panel serve`` process, per server loop (see :func:`panel_context`).
_PANEL: dict[asyncio.AbstractEventLoop, asyncio.Future[Context]] = {}
#: The lab behind it, when it runs in this process.
_PANEL_LABS: dict[asyncio.AbstractEventLoop, LabApp] = {}


async def panel_context() -> Context:
    """The lab behind ``panel serve panel_apps/room.py panel_apps/lobby.py``.

    With ``SENSOCTO_LAB_CONNECT=ws://HOST:PORT`` (and optionally ``SENSOCTO_LAB_TOKEN``,
    a viewer token) the pages show the rooms of that engine, running in another
    process. Otherwise the first session starts a :class:`LabApp` with
    :meth:`LabOptions.from_env` on the Panel server's own loop (sessions and engine share
    it); later sessions get the same context. ``panel serve`` ends its loop at exit
    without closing the engine, so the WAL is fsynced then.
    """
    loop = asyncio.get_running_loop()
    future = _PANEL.get(loop)
    if future is None:
        future = _PANEL[loop] = loop.create_future()
        try:
            future.set_result(await _start_panel_lab())
        except BaseException as exc:
            del _PANEL[loop]
            future.set_exception(exc)
            raise
    return await asyncio.shield(future)


async def _start_panel_lab() -> Context:
    remote = os.environ.get("SENSOCTO_LAB_CONNECT")
    if remote:
        return RemoteContext(remote, os.environ.get("SENSOCTO_LAB_TOKEN") or None)
    lab = await LabApp.start(LabOptions.from_env())
    _PANEL_LABS[asyncio.get_running_loop()] = lab
    for line in lab.describe():
        print(line, flush=True)
    atexit.register(_sync_at_exit, lab.engine)
    return lab.dashboard_context()


async def close_panel_context() -> None:
    """Close the lab :func:`panel_context` started on this loop (if any); the next call
    starts a new one. ``panel serve`` itself never needs this: its process ends."""
    loop = asyncio.get_running_loop()
    _PANEL.pop(loop, None)
    lab = _PANEL_LABS.pop(loop, None)
    if lab is not None:
        await lab.close()


def _sync_at_exit(engine: Any) -> None:
    if not engine.closed:
        engine.store.flush()
