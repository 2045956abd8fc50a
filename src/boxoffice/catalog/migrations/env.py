from boxoffice.catalog.tables import metadata
from boxoffice.platform.migrate import run_migrations

run_migrations(metadata)
