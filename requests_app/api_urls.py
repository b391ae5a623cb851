"""REST endpoints for erasure requests."""
urlpatterns: list = []
