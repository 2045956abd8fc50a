from boxoffice.music.store import include_name, metadata
from boxoffice.platform.migrate import run_migrations

run_migrations(metadata, include_name=include_name)
