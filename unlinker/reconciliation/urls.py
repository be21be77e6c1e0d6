from django.urls import path

from . import views

app_name = "reconciliation"
urlpatterns = [
    path("", views.report, name="report"),
]
