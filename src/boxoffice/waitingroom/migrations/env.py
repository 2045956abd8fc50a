from boxoffice.platform.migrate import run_migrations
from boxoffice.waitingroom.store import metadata

run_migrations(metadata)
