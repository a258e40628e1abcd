"""Where an event enters: its inbox row, deduplicated on its workspace and key, written in one
transaction with the decisions, runs and jobs it starts."""
