"""Several courses on one appliance: each with its own materials, collection and index."""
