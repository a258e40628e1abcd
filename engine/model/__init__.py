"""Pure data: recipes, events, limits, retry policies, ids, durations and the run statuses."""
