"""HTTP plumbing the routes depend on: who is asking, limits, CSRF, security headers, forms, errors, templates."""
