"""Replay a time range of docs.raw into a run's own namespace, for backtests.

`surveil.replay.select` picks the documents (by publication time or Kafka timestamp) in one
fixed order; `surveil.replay.run` runs them through the worker's steps into the run's own
database (`surveil.replay.runs`); `surveil.replay.diff` compares two runs.
"""
