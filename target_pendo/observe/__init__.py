"""What an operator sees: progress lines, the run report (typed document, text and HTML),
the call timeline, the alert, log levels, redaction of secrets, and the sync-log export."""
