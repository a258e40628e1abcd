"""Which recipes an event starts: the recipe index and the dispatcher's decisions."""
