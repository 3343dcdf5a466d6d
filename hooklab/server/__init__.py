"""The HTTP side: the receiver (`/hooks`), the management API (`/api`), and `hooklab serve`.

`Receiver` (from `hooklab.server.app`) serves both on the running event loop."""

from hooklab.server.app import Receiver
from hooklab.server.receiver import CannotListen, NoRunningLoop, PortInUse, ReceiverError

__all__ = ["CannotListen", "NoRunningLoop", "PortInUse", "Receiver", "ReceiverError"]
