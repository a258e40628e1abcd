"""Admission of the runs an event starts: flood protection, run modes and their slots."""
