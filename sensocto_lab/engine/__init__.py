"""The engine: per-sensor supervised tasks, the bus, attention, load, lenses, live synchrony.

Everything outside the engine is written against :mod:`sensocto_lab.engine.contracts`.
"""
