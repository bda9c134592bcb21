"""Chaos Toolkit compatibility: run Chaos Toolkit experiment files with this service's verdicts."""

#: Chaos Toolkit's ``runtime.hypothesis.strategy`` values (its CLI's typo ``continously`` is accepted too).
HYPOTHESIS_STRATEGIES = ("default", "before-method-only", "after-method-only", "during-method-only", "continuously")
#: Chaos Toolkit's ``runtime.rollbacks.strategy`` values.
ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")
