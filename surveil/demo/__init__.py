"""`surveil demo`: the whole pipeline on one machine, from a feed to an alert.

`surveil.demo.run` starts what is missing (broker, worker), ingests the sample feed through
the Ingestor like every other source, and reads back what landed; `surveil.demo.receiver`
is the local webhook receiver that stands in for Slack when no webhook is configured.
"""
