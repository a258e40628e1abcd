from engine.queue.base import Job, JobQueue, NewJob
from engine.queue.sql import SqlJobQueue

__all__ = ["Job", "JobQueue", "NewJob", "SqlJobQueue"]
