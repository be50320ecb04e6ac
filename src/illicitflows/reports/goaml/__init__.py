"""goAML suspicious transaction report (STR) drafts: built from decisions, their reasons,
behaviour comparison and networks, validated against the shipped XSD."""
