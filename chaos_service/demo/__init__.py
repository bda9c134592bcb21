"""The demo and the tour.

`suite.run_suite_demo` is the demo: the built-in experiments against sandboxes. The tour
(`tour.run_tour`) shows real clients, real servers and the engine between them, under faults:
its first parts put a private server behind a proxy of one engine, inject faults through
the engine's API and print what a real client saw; the last runs the sandbox's chat
back-end behind its own engine and shows what a chat user sees.
"""

#: Sandboxes the demo runs experiments on side by side, by default and at most.
DEFAULT_LANES = 2
MAX_LANES = 4
