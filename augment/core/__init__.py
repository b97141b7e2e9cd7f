"""The base layer: the face dataset and its readers, labels, runtime, run folders, atomic writes,
progress and errors. It imports nothing else of the project; ``classifier``, ``gan`` and the
application modules in ``augment`` build on it."""
