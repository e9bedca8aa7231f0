"""The bundled Pendo emulator: ``Emulator().start()`` in-process, or ``target-pendo-emulator``.

Its defaults are the realistic Pendo of ../shared/pendo-api.md; ``Switches`` lists every
behaviour the contract leaves open (``Emulator(switches=...)``, ``set_switches``).
"""

from pendo_emulator.server import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from pendo_emulator.switches import Switches

__all__ = ["DEMO_INTEGRATION_KEY", "DEMO_TRACK_SECRET", "Emulator", "Switches"]
