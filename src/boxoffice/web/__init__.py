"""web: the backend-for-frontend. Server-rendered pages (Jinja2 + htmx) over the other services' public APIs."""
