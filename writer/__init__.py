"""The writer process: tails the spools into PostgreSQL, buffering while it does not answer."""
