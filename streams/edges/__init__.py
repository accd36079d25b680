"""The Kafka edges outside a worker: bootstrap, topics, control announcements, replay."""
