"""One run: its shared context, the writer of row outcomes, rejects, workers, retention."""
