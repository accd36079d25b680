"""streamsense streaming layer: Faust app, agents, monitors, CLI."""
