"""``python -m adaptcast.deploy.kafka``: the launcher's command line."""

from adaptcast.deploy.kafka.cli import main

main()
