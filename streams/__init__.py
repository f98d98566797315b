"""Streams: the Faust app, its topics, the typed records between stages and the agents."""
