"""The shared kit every boxoffice service is built from.

Public surface, by module:

- ``settings``: ``Settings`` (all ``BOXOFFICE_*`` environment variables)
- ``problems``: ``Problem`` and its subclasses, mapped to RFC 9457 problem+json
- ``db``: ``Database`` (SQLite per service or PostgreSQL by URL), ``UnitOfWork``
- ``bus``: events, the outbox and inbox tables, the relay, consumers and the ``sql`` / ``kafka`` backends
- ``clients``: ``ServiceClient`` (timeouts, retries for idempotent calls, a circuit breaker)
- ``auth``: ``TokenVerifier`` (JWKS), ``CurrentUser``, ``require_role``
- ``mail``: ``Mailer`` with the dev mailbox and SMTP backends
- ``app``: ``Service`` and ``create_service_app``, the one way every service is built
- ``gateway``: the prefix router in front of the services (in-process or HTTP)

The platform imports no service: that contract is checked by import-linter.
"""
