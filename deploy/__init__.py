"""Running adaptcast locally: a Kafka broker from Maven Central jars (``kafka``) and ``make demo-live``."""
