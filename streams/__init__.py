"""streamsense streaming layer, laid out as the data flow.

- ``streams.core``: pure cores (records, scoring, tickers, routing, recommendations,
  monitors); no Faust, Kafka or ONNX Runtime imports.
- ``streams.runtime``: the Faust app and what runs inside a worker (agents, confirmed
  delivery, sinks, model swapper, lag reporter, metrics).
- ``streams.edges``: the Kafka edges outside a worker (bootstrap, topics, control
  announcements, replay of real data).
- ``streams.cli``: the ``streamsense`` console script, the demo and its live view.
- ``streams.compose``: the composition root that builds a worker's collaborators.
"""
