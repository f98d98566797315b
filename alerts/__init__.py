"""Alerts: rules over `streams.windows` ticker windows, a router, and the notifiers."""
