from boxoffice.platform.migrate import run_migrations
from boxoffice.tickets.store import metadata

run_migrations(metadata)
