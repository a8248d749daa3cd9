"""logpipe's built-in plugins, installed as the `logpipe_plugins` package and found
through the `logpipe.plugins` entry-point group like any third-party plugin."""
