"""Built-in filters: how events are parsed and reshaped."""
