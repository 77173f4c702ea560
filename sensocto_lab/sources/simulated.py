"""A simulated group recorded by an engine, through the same ingest calls a device uses.

``group = await SimulatedGroup.start(engine, 8, room="lab", coupling=1.5)`` registers
``sim-{room}-{i}`` sensors and runs a producer the engine owns
(:meth:`~sensocto_lab.engine.engine.Engine.start_task`): every ``tick_s`` seconds of the
engine's clock it advances a :class:`~sensocto_lab.sources.simulator.GroupSimulator`
and hands what it produced (respiration, hr, rr, ecg, accelerometer, battery) to
``engine.ingest``, so the data is validated, stored and published like a strap's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import numpy as np
import numpy.typing as npt

from sensocto_lab.engine.engine import Engine
from sensocto_lab.errors import ConfigError
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

    async def stop(self, *, unregister: bool = True) -> None:
        """Stop producing and, by default, unregister the group's sensors (data stays stored)."""
        engine = self._engine
        await engine.stop_task(self.task_name)
        if unregister and not engine.closed:
            for sensor_id in self.sensor_ids:
                if sensor_id in engine.sensors:
                    await engine.unregister_sensor(sensor_id)
