from django.urls import path

from . import views

app_name = "unlinking"
urlpatterns = [
    path("", views.history, name="history"),
    path("plan/", views.plan_page, name="plan"),
    path("<int:pk>/", views.batch_page, name="batch"),
    path("<int:pk>/retry/", views.retry, name="retry"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
]
