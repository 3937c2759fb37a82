"""The replayer process: drains the writer's buffer into PostgreSQL and maintains the history."""
