"""The API's routers, one per resource."""

from fastapi import Request

from chaos_service.control.plane import ControlPlane


def plane(request: Request) -> ControlPlane:
    """The control plane the app serves."""
    control: ControlPlane = request.app.state.plane
    return control
