"""Time: the scheduler, schedule timetables and the leadership that elects one process for
periodic work."""
