from boxoffice.platform.bus.deadletters import metadata
from boxoffice.platform.migrate import run_migrations

run_migrations(metadata)
