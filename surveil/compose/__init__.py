"""The composition root: settings in, running parts out.

`runtime` turns settings into the parts (the worker's config, ClickHouse, the local broker,
the model, the alert rules, a worker process); `worker` builds and runs the Faust worker
with every agent; `ingestion` builds the Ingestor and runs the sources. Only the command
line, the demo and replay build them.
"""
