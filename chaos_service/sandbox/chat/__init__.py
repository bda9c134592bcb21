"""The sandbox's chat back-end: a reference AI chat service (see docs/sandbox.md)."""
