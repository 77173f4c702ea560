"""Panel room dashboards: cards, pages, visibility observers, the server and its login page."""
