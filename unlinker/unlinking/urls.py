from django.urls import path

from . import views

app_name = "unlinking"
urlpatterns = [
    path("", views.history, name="history"),
]
