"""Alert rules, their evaluator and exporters."""
