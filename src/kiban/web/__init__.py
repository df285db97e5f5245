"""The web application: app factory, base layout, static files, error pages."""
