"""`python -m logpipe.grok`: the pattern workbench, as `logpipe grok`."""

import sys

from logpipe.grok.workbench import main

sys.exit(main(sys.argv[1:]))
