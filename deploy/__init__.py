"""streamsense deployment: local Kafka broker launcher, Prometheus and Grafana files."""
