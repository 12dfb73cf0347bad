"""HTTP API: routers per audience, auth, and the Chinese web pages."""
