"""What the shipped alert rules amount to, for tests that print or check them: derived from the rule files, so
adding a default rule changes no test."""

from alerts.rules import load_rules

DEFAULT_RULES = len(load_rules().rules)
