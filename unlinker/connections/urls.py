from django.urls import path

from . import views

app_name = "connections"
urlpatterns = [
    path("", views.connection_list, name="list"),
    path("actionstep/start/", views.actionstep_start, name="actionstep_start"),
    path("actionstep/callback/", views.actionstep_callback, name="actionstep_callback"),
    path("<int:pk>/xero/start/", views.xero_start, name="xero_start"),
    path("xero/callback/", views.xero_callback, name="xero_callback"),
    path("<int:pk>/xero/tenant/", views.xero_tenant, name="xero_tenant"),
    path("<int:pk>/disconnect/", views.disconnect, name="disconnect"),
]
