"""Built-in codecs: bytes to records and back."""
