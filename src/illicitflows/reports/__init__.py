"""Reports for people: a decision's standalone HTML report, a model version's report, and
goAML suspicious transaction report drafts."""
