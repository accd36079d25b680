"""The ``streamsense`` console script: one typer app with a sub-command per capability."""
