"""Config: two front-ends (Logstash DSL, Fluentd directives) producing one model.

`load_config_paths` / `load_config_string` are the entry points; `model` holds the
node types, `conditions` and `tagmatch` compile the routing parts of the model.
"""

from logpipe.config.loader import load_config_paths, load_config_string

__all__ = ["load_config_paths", "load_config_string"]
