"""The event bus (ARCHITECTURE.md section 3): outbox -> relay -> bus -> consumer groups with an inbox.

- ``envelope``: the CloudEvents-shaped ``Envelope`` every event travels in
- ``tables``: the ``outbox`` and ``inbox`` tables each service database carries
- ``port``: the ``Bus`` / ``Consumer`` protocol both backends implement
- ``sql``: the embedded backend, a durable partitioned log in a SQL database
- ``kafka``: the Kafka-protocol backend (aiokafka)
- ``relay``: moves committed outbox rows to the bus
- ``consumer``: runs a handler for each event of a group's topics, at most once per event
"""
