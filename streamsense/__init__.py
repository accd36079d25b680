"""The foundation every streamsense package stands on: the one exception root.

It imports nothing of the project, so ``models``, ``retrain``, ``streams``, ``deploy``
and ``bench`` can all derive their errors from :class:`streamsense.errors.StreamsenseError`.
"""
