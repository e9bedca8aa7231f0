"""The bundled Pendo emulator: ``Emulator().start()`` in-process, or ``target-pendo-emulator``."""

from target_pendo.emulator.server import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator

__all__ = ["DEMO_INTEGRATION_KEY", "DEMO_TRACK_SECRET", "Emulator"]
