"""The operations console: read-only web pages over a home's lake and registry."""
