"""matfuse."""
