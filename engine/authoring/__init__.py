"""Recipes as people write them, without I/O: loading YAML, validating, the JSON Schema,
template rendering and dry runs."""
