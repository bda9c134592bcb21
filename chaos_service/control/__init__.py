"""The control plane: the store of runs, schedules, tokens and audit, and (to come) the REST API."""
