"""One running lab: engine, ingest endpoint, dashboards, live synchrony, a simulated group.

This is what ``sensocto-lab demo`` / ``serve`` / ``record`` run, and what a notebook can
start with one call::

    async with await LabApp.start(LabOptions(data_dir="session-1", simulate=8)) as lab:
        print(*lab.describe(), sep="\\n")
        ...

Everything runs on the engine's loop; closing the app stops the simulator, the
dashboards, the endpoint and then the engine (which flushes and fsyncs storage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensocto_lab.errors import ValidationError
from sensocto_lab.live.engine import Engine, SimulatedGroup
from sensocto_lab.live.rooms import LAB_USER, RoomStore, format_code
from sensocto_lab.live.server import IngestServer, ServerConfig, serve
from sensocto_lab.live.synchrony import LiveSynchrony

__all__ = ["LabApp", "LabOptions"]


@dataclass(frozen=True, slots=True)
class LabOptions:
    """What to run.

    Attributes
    ----------
    data_dir
        Where recordings and room metadata live.
    host, port
        Where the ingest endpoint (and ``/health``) listens; port 0 picks a free one.
    dashboard_port
        Port of the Panel dashboards; ``None`` runs without them, 0 picks a free one.
    tokens, auth
        Ingest tokens devices must present; ``auth=False`` accepts any device.
    simulate, room, coupling
        A simulated group of ``simulate`` participants in ``room`` with coupling K.
    basic_auth
        The dashboards ask who is watching (a shared password, or a JSON file of user
        → password); members of a room then open it without its code.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 4000
    dashboard_port: int | None = 5006
    tokens: frozenset[str] = field(default_factory=frozenset)
    auth: bool = True
    simulate: int = 0
    room: str = "lab"
    coupling: float = 1.5
    basic_auth: str | None = None


class LabApp:
    """The parts of a running lab; make one with :meth:`start`."""

    def __init__(
        self,
        options: LabOptions,
        engine: Engine,
        server: IngestServer,
        rooms: RoomStore,
        dashboards: Any | None,
        group: SimulatedGroup | None,
        synchrony: LiveSynchrony,
    ) -> None:
        self.options = options
        self.engine = engine
        self.server = server
        self.rooms = rooms
        self.dashboards = dashboards
        self.group = group
        self.synchrony = synchrony

    @classmethod
    async def start(cls, options: LabOptions) -> LabApp:
        """Start the engine, endpoint, simulator, room synchrony and dashboards, in order."""
        engine = await Engine.start(options.data_dir, thread=False)
        rooms = RoomStore(options.data_dir, clock=engine.clock)
        server: IngestServer | None = None
        dashboards = None
        synchrony: LiveSynchrony | None = None
        try:
            config = ServerConfig(
                tokens=options.tokens, require_token=options.auth, default_room=options.room
            )
            server = await serve(
                engine, host=options.host, port=options.port, config=config, rooms=rooms
            )
            _ensure_room(rooms, options.room)
            group = None
            if options.simulate:
                group = await engine.add_simulated_group(
                    options.simulate, room=options.room, coupling=options.coupling
                )
                for sensor_id in group.sensor_ids:
                    rooms.assign_sensor(options.room, sensor_id, by=LAB_USER)
            synchrony = await LiveSynchrony.start(engine, options.room)
            if options.dashboard_port is not None:
                from sensocto_lab.widgets.panel_server import login_options, serve_dashboards

                dashboards = await serve_dashboards(
                    engine,
                    rooms=rooms,
                    port=options.dashboard_port,
                    address=options.host,
                    **login_options(options.basic_auth),
                )
        except BaseException:
            if synchrony is not None:
                await synchrony.close()
            if dashboards is not None:
                await dashboards.stop()
            if server is not None:
                await server.close()
            rooms.close()
            await engine.close()
            raise
        return cls(options, engine, server, rooms, dashboards, group, synchrony)

    def describe(self) -> list[str]:
        """Human-readable lines: where everything is and how to join the room."""
        opts = self.options
        room = self.rooms.room(opts.room)
        lines = [
            f"data directory   {opts.data_dir.resolve()}",
            f"ingest endpoint  ws://{opts.host}:{self.server.port}/socket/websocket"
            + ("" if opts.auth else "  (no token required)"),
            f"health           http://{opts.host}:{self.server.port}/health",
            f"room             {room.room_id}  join code {format_code(room.join_code)}",
        ]
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

    async def close(self) -> None:
        """Stop the simulator, synchrony, dashboards, endpoint, then the engine (flushes)."""
        if self.group is not None:
            await self.group.stop(unregister=False)
        await self.synchrony.close()
        if self.dashboards is not None:
            await self.dashboards.stop()
        await self.server.close()
        self.rooms.close()
        await self.engine.close()

    async def __aenter__(self) -> LabApp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _ensure_room(rooms: RoomStore, room_id: str) -> None:
    """Create ``room_id`` owned by the lab unless it exists (it persists across runs)."""
    try:
        rooms.room(room_id)
    except ValidationError as exc:
        if exc.reason != "unknown_room":
            raise
        rooms.create_room(room_id, owner=LAB_USER)
