"""Built-in inputs: where events come from."""
