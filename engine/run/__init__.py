"""Executing runs: the workers, the runner (where retries and waits are decided), steps, and
the run state the trace is written from."""
