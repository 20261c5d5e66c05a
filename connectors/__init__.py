"""Connectors: one module per format or service, behind the contract in base.py."""
