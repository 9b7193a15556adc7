"""LabelPulse's Kafka: where it is and how to connect (`settings`), and its topics made
explicitly, never by a broker's auto-creation (`topics`), and the headers of a dead letter (`dead_letters`)."""
