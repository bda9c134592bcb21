"""Probes: clients that exercise a system on a fixed schedule and record what they saw.

`schedule` runs a probe open-loop (each attempt starts on time, whether or not the
previous one finished, and is attributed to its scheduled start); `records` holds what
one attempt produced. The probe kinds, the checkers and the statistics build on them.
"""
