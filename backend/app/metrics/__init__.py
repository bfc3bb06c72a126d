"""Prometheus metrics of the appliance: what an owner watches without reading logs."""
