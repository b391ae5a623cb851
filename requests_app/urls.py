from django.urls import path

from requests_app import views

app_name = "requests_app"
urlpatterns = [
    path("", views.OfficerHomeView.as_view(), name="home"),
    path("all/", views.ErasureRequestListView.as_view(), name="list"),
    path("new/", views.ErasureRequestCreateView.as_view(), name="create"),
    path("<int:pk>/", views.ErasureRequestDetailView.as_view(), name="detail"),
    path("<int:pk>/actions/<slug:action>/", views.ErasureRequestActionView.as_view(), name="action"),
]
