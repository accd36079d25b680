"""What runs inside a worker: the Faust app, agents, delivery, sinks, swapper, lag, metrics."""
