"""What the control plane refuses, beyond bad input and unknown names (`chaos_service.errors`)."""

from __future__ import annotations

from chaos_service.errors import ChaosServiceError


class Conflict(ChaosServiceError):
    """The request is valid but the current state forbids it (409)."""


class Halted(Conflict):
    """The control plane is halted: no run and no fault starts until the halt is released."""


class Busy(Conflict):
    """This replica runs as many runs as it may."""


class Unavailable(ChaosServiceError):
    """Something the control plane depends on (the engine) did not answer (503)."""
