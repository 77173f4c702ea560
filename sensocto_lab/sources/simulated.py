"""A simulated group recorded by an engine, through the same ingest calls a device uses.

``group = await SimulatedGroup.start(engine, 8, room="lab", coupling=1.5)`` registers
``sim-{room}-{i}`` sensors and runs a producer the engine owns
(:meth:`~sensocto_lab.engine.engine.Engine.start_task`): every ``tick_s`` seconds of the
engine's clock it advances a :class:`~sensocto_lab.sources.simulator.GroupSimulator`
and hands what it produced (respiration, hr, rr, ecg, accelerometer, battery) to
``engine.ingest``, so the data is validated, stored and published like a strap's.

``group.follow_conditions({"baseline": 0.0, "task": 2.0})`` makes the group follow
the room's protocol: it listens to ``events:{room}`` on the engine's bus and sets
the coupling ``K`` when a listed condition begins (and back when it ends), so
synchrony changes with the condition the way an experiment hopes it will.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from sensocto_lab.engine import topics
from sensocto_lab.engine.bus import Subscription
from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import ConfigError
from sensocto_lab.events import Event, condition_phase
from sensocto_lab.sources.simulator import MAX_STEP_S, GroupSimulator, SimConfig

__all__ = ["SimulatedGroup"]

log = logging.getLogger(__name__)


class SimulatedGroup:
    """A running simulated group; make one with :meth:`start`.

    Attributes
    ----------
    simulator
        The :class:`GroupSimulator` (its ground truth: phases, coupling, order parameter).
    sensor_ids
        The group's sensors, ``sim-{room}-{i}``.
    room
        The group's room.
    tick_s
        Simulated seconds per produced batch.
    """

    def __init__(self, engine: Engine, simulator: GroupSimulator, tick_s: float) -> None:
        self._engine = engine
        self.simulator = simulator
        self.sensor_ids: tuple[str, ...] = simulator.sensor_ids
        self.room = simulator.room
        self.tick_s = tick_s
        self._registered = False
        self._follow: Subscription | None = None
        self._couplings: dict[str, float] = {}
        self._default: float | None = None
        #: Open followed conditions, oldest first: (label, K before it began).
        self._following: list[tuple[str, float]] = []

    def __repr__(self) -> str:
        return f"<SimulatedGroup {self.room!r} n={len(self.sensor_ids)} K={self.coupling:g}>"

    @classmethod
    async def start(
        cls,
        engine: Engine,
        n: int,
        room: str = "sim",
        coupling: float = 1.0,
        seed: int = 0,
        ecg_rate_hz: float | None = None,
        *,
        tick_s: float = 0.1,
        config: SimConfig | None = None,
    ) -> SimulatedGroup:
        """Add ``n`` simulated participants to ``engine`` as sensors ``sim-{room}-{i}``.

        Parameters
        ----------
        engine
            A started engine (on this loop or its own thread).
        n
            Participants (1–1000).
        room
            Their room; one simulated group per room (:class:`ConfigError`
            ``duplicate_task`` for a second).
        coupling
            Kuramoto coupling of their breathing, rad/s (change it live with
            :meth:`set_coupling`).
        seed
            Seed of every random draw.
        ecg_rate_hz
            ECG sampling rate, Hz (default: ``config``'s, 130 Hz like a Polar H10).
        tick_s
            Seconds of simulated time per produced batch.
        config
            Rates and physiology of the simulation.
        """
        if not tick_s > 0:
            raise ConfigError("tick_s must be > 0 seconds")
        cfg = config or SimConfig()
        if ecg_rate_hz is not None:
            cfg = dataclasses.replace(cfg, ecg_hz=ecg_rate_hz)
        simulator = GroupSimulator(
            n, coupling, seed, start_ns=engine.clock.time_ns(), room=room, config=cfg
        )
        group = cls(engine, simulator, tick_s)
        await engine.start_task(group.task_name, group._produce)
        for info in simulator.sensor_infos():
            await engine.register_sensor(info)
        group._registered = True
        return group

    @property
    def task_name(self) -> str:
        """The name of the producer among the engine's tasks."""
        return f"sim:{self.room}"

    async def _produce(self) -> None:
        engine, simulator = self._engine, self.simulator
        while True:
            await engine.clock.sleep(self.tick_s)
            # A fake clock may jump further than the simulator steps at once.
            target = min(engine.clock.time_ns(), simulator.now_ns + int(MAX_STEP_S * 1e9))
            step = simulator.advance_to(target)
            if not self._registered:
                continue  # start() is still registering the sensors
            results = await asyncio.gather(
                *(engine.ingest(batch) for batch in step.batches), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                log.warning(
                    "simulated room %s: %d of %d batches refused, e.g. %s",
                    simulator.room,
                    len(errors),
                    len(step.batches),
                    errors[0],
                )

    @property
    def coupling(self) -> float:
        """The breathing coupling ``K``, rad/s."""
        return self.simulator.coupling

    def set_coupling(self, coupling: float) -> None:
        """Change ``K`` (rad/s) from the next tick on (safe from any thread)."""
        self.simulator.set_coupling(coupling)

    def true_phases(self) -> npt.NDArray[np.float64]:
        """Each participant's true breathing phase now, rad in ``[0, 2π)``, shape ``(n,)``."""
        return self.simulator.true_phases

    def true_order_parameter(self) -> float:
        """The true Kuramoto order parameter ``R`` now (0 incoherent … 1 in lock-step)."""
        return self.simulator.true_order_parameter()

    @property
    def follow_task_name(self) -> str:
        """The name of the condition follower among the engine's tasks."""
        return f"sim-follow:{self.room}"

    async def follow_conditions(
        self, couplings: Mapping[str, float], default: float | None = None
    ) -> None:
        """Set the coupling from the room's conditions as they begin and end.

        Parameters
        ----------
        couplings
            Condition label → coupling ``K`` in rad/s while it runs (e.g.
            ``{"baseline": 0.0, "task": 2.0, "recovery": 0.0}``); other labels are
            ignored.
        default
            ``K`` (rad/s) when a followed condition ends and no other is running;
            ``None``: the ``K`` the group had before that condition began.

        Notes
        -----
        The follower is a task the engine owns, reading ``events:{room}`` from a
        subscription made before this returns, so a protocol started afterwards is
        followed from its first condition. Nested followed conditions: the one begun
        last wins; when it ends, the one still running before it applies again.
        Calling it again replaces the mapping.
        """
        table = {str(k): float(v) for k, v in couplings.items()}
        for label, k in table.items():
            if not (np.isfinite(k) and k >= 0):
                raise ConfigError(f"coupling for {label!r} must be finite and >= 0, got {k}")
        if default is not None and not (np.isfinite(default) and default >= 0):
            raise ConfigError(f"default coupling must be finite and >= 0, got {default}")
        self._couplings, self._default = table, default
        if self._follow is None or self._follow.closed:
            self._follow = self._engine.bus.subscribe(topics.events(self.room), maxsize=1024)
            await self._engine.start_task(self.follow_task_name, self._follow_events)

    async def _follow_events(self) -> None:
        sub = self._follow
        assert sub is not None
        async for event in sub:
            if isinstance(event, Event):
                self.on_event(event)

    def on_event(self, event: Event) -> None:
        """Apply one event of the room to the coupling (what the follower does per event)."""
        phase = condition_phase(event.kind, event.value)
        if phase is None or event.room != self.room or event.label not in self._couplings:
            return
        if phase == "begin":
            self._following.append((event.label, self.coupling))
            self.set_coupling(self._couplings[event.label])
            return
        labels = [label for label, _ in self._following]
        if event.label not in labels:
            return
        index = labels.index(event.label)
        _, before = self._following.pop(index)
        if index < len(self._following):
            # An outer condition ended under a running inner one: the inner still rules,
            # and hands back what the outer would have when it ends.
            self._following[index] = (self._following[index][0], before)
            return
        if self._following:
            self.set_coupling(self._couplings[self._following[-1][0]])
        else:
            self.set_coupling(before if self._default is None else self._default)

    async def stop(self, *, unregister: bool = True) -> None:
        """Stop producing and, by default, unregister the group's sensors (data stays stored)."""
        engine = self._engine
        if self._follow is not None:
            self._follow.close()
            await engine.stop_task(self.follow_task_name)
        await engine.stop_task(self.task_name)
        if unregister and not engine.closed:
            for sensor_id in self.sensor_ids:
                if sensor_id in engine.sensors:
                    await engine.unregister_sensor(sensor_id)
