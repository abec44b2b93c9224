"""A real single-node Apache Kafka broker (KRaft) from Maven Central jars, for tests, demos and developers.

No Docker and no download site: Maven resolves the classpath from ``pom.xml`` into a cache outside
the work tree (``jars``), Kafka's own StorageTool formats the storage and ``kafka.Kafka`` runs as a
combined broker+controller on 127.0.0.1 (``config``, ``broker``). From the shell::

    python -m adaptcast.deploy.kafka up            # start on 127.0.0.1:9092, detached
    python -m adaptcast.deploy.kafka down          # stop it

From Python::

    with KafkaBroker() as broker:        # free port, temporary state dir
        produce_to(broker.bootstrap)
        broker.restart()                 # same JVM command, log dir and port
        broker.stop()                    # an outage of any length: the port refuses connections ...
        broker.start()                   # ... until it serves the same log dir on the same port again
"""

from adaptcast.deploy.kafka.broker import KafkaBroker
from adaptcast.deploy.kafka.errors import KafkaLauncherError
from adaptcast.deploy.kafka.readiness import check_bootstrap

__all__ = ["KafkaBroker", "KafkaLauncherError", "check_bootstrap"]
