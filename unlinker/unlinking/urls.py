from django.urls import path

from . import views

app_name = "unlinking"
urlpatterns = [
    path("unlink/<int:connection_id>/plan/", views.plan_page, name="plan"),
    path("history/", views.BatchList.as_view(), name="history"),
    path("history/<int:pk>/", views.batch_page, name="batch"),
    path("history/<int:pk>/retry/", views.retry, name="retry"),
    path("history/<int:pk>/resume/", views.resume, name="resume"),
    path("history/<int:pk>/cancel/", views.cancel, name="cancel"),
    # Where the plan page used to be: 308 keeps the POST, and so the selection, on the way.
    path("history/plan/", views.moved_plan_page, name="moved_plan"),
    path("linked/<int:connection_id>/unlink/", views.moved_plan_page, name="moved_unlink"),
]
