"""``python -m streams.cli``: the same as the ``streamsense`` console script."""

from streams.cli.main import main

main()
