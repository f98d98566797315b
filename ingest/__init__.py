"""Ingest: sources that fetch documents and the producer that puts them on docs.raw."""
