"""Use cases, one per file and per CLI verb: train, promote, score."""
