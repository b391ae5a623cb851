"""Pages of the officer's review of located records, under /requests/ (namespace ``review``)."""

from django.urls import path

from requests_app.matching import views as review_views

app_name = "review"
urlpatterns = [
    path("review/", review_views.ReviewQueueView.as_view(), name="queue"),
    path("<int:pk>/review/", review_views.ReviewView.as_view(), name="detail"),
    path("<int:pk>/review/decide/", review_views.ReviewDecideView.as_view(), name="decide"),
    path(
        "<int:pk>/review/confirm-above/", review_views.ReviewConfirmAboveView.as_view(), name="confirm-above"
    ),
    path(
        "<int:pk>/review/nothing-found/", review_views.ReviewNothingFoundView.as_view(), name="nothing-found"
    ),
    path("<int:pk>/review/locate/", review_views.ReviewLocateView.as_view(), name="locate"),
]
