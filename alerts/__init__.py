"""Alerts: rules over signals, a router, and the notifiers that deliver."""
