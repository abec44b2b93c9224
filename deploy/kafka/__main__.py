"""``python -m adaptcast.deploy.kafka``: the launcher's command line."""

import sys

from adaptcast.deploy.kafka.cli import main

sys.exit(main())
