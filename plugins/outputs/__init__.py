"""Built-in outputs: where events go."""
