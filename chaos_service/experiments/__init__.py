"""Experiments: declarative files of probes, steady state, a fault timeline and SLOs, run to a verdict.

`plan` holds what a validated experiment file becomes (plain dataclasses); `record`
holds what a run produced, from which the journal, the JUnit file and the HTML report
are written.
"""
