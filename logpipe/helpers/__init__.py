"""Plugin helpers: machinery several plugins share (servers, TLS, parsers, multiline, ids). See ARCHITECTURE.md."""
