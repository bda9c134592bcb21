"""chaos-service: chaos and fault injection for AI chat back-ends."""

__version__ = "0.1.0"

#: The Toxiproxy HTTP API version the engine implements (reported by ``GET /version``).
TOXIPROXY_API_VERSION = "2.12.0"

__all__ = ["TOXIPROXY_API_VERSION", "__version__"]
