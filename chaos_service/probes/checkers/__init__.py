"""Checkers: pure functions that grade what a probe observed (no I/O, no clocks).

`sequence` checks one run's events against the run grammar; `delivery` compares what
one subscriber received with what it was entitled to receive.
"""
