from django.urls import path

from . import views

app_name = "reconciliation"
urlpatterns = [
    path("", views.report, name="report"),
    path("<int:connection_id>/", views.FindingList.as_view(), name="connection_report"),
    path("<int:connection_id>/run/", views.run_now, name="run"),
    path("<int:connection_id>/progress/", views.progress, name="progress"),
    path("<int:connection_id>/cleanup/", views.cleanup, name="cleanup"),
]
