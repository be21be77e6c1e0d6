from django.urls import path

from . import sync_views

app_name = "sync"
urlpatterns = [
    path("<int:connection_id>/sync/", sync_views.sync_start, name="start"),
    path("<int:connection_id>/sync/panel/", sync_views.sync_panel, name="panel"),
]
