"""REST endpoints for data sets, models and jobs."""
urlpatterns: list = []
