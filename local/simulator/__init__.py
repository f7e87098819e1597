"""Skribble simulator for the local stack and tests.

`Simulator(SimulatorConfig(...)).start()` serves a subset of Skribble's API v2
under `/v2` and a driver API under `/_sim` on a loopback port, and delivers the
callbacks that each driver step fires.
"""

from .config import SimulatorConfig
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig"]
