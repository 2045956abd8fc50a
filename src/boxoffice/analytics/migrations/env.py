from boxoffice.analytics.store import metadata
from boxoffice.platform.migrate import run_migrations

run_migrations(metadata)
