"""The scoring service: engine (no HTTP), history state, roll-ups, networks, HTTP shell."""
