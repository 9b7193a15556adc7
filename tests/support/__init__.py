"""What the tests share: services, workers, seeded databases, hand-built events, HTTP helpers, references
computed independently of the code (pandas), recorders and a browser."""
