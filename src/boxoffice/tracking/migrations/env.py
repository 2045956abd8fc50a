from boxoffice.platform.migrate import run_migrations
from boxoffice.tracking.store import metadata

run_migrations(metadata)
