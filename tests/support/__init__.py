"""What the tests share: services, references computed independently of the code, recorders, a browser."""
