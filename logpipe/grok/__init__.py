"""logpipe's grok engine: Logstash-compatible patterns on stdlib `re`, fast and bounded.

    from logpipe.grok import Grok
    Grok("%{COMBINEDAPACHELOG}").match(line)   # -> nested dict or None

See `engine` (compilation and caching), `translate` (Oniguruma → re), `watchdog`
(timeouts), `formats` (Fluentd named formats), `workbench` (the `logpipe grok` CLI).
"""

from logpipe.errors import GrokError, GrokTimeout
from logpipe.grok.engine import Grok
from logpipe.grok.extract import GrokCaptures
from logpipe.grok.library import builtin_patterns

__all__ = ["Grok", "GrokCaptures", "GrokError", "GrokTimeout", "builtin_patterns"]
