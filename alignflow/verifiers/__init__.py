"""Rewards that a rule checks (a constraint followed, a format matched, an answer right), beside or instead of the
learned reward model: a rule cannot be flattered the way a learned scorer can."""
