from django.urls import path

from . import team_views, views

app_name = "connections"
urlpatterns = [
    path("", views.connection_list, name="list"),
    path("actionstep/start/", views.actionstep_start, name="actionstep_start"),
    path("actionstep/callback/", views.actionstep_callback, name="actionstep_callback"),
    path("<int:pk>/xero/start/", views.xero_start, name="xero_start"),
    path("xero/callback/", views.xero_callback, name="xero_callback"),
    path("<int:pk>/xero/tenant/", views.xero_tenant, name="xero_tenant"),
    path("<int:pk>/disconnect/", views.disconnect, name="disconnect"),
    path("<int:pk>/history-notes/", views.set_history_notes, name="set_history_notes"),
    path("<int:pk>/team/", team_views.team, name="team"),
    path("<int:pk>/team/add/", team_views.add_member, name="add_member"),
    path("<int:pk>/team/new/", team_views.new_person, name="new_person"),
    path("<int:pk>/team/role/", team_views.change_role, name="change_role"),
    path("<int:pk>/team/remove/", team_views.remove_member, name="remove_member"),
    path("<int:pk>/team/send-link/", team_views.send_link, name="send_link"),
    path("<int:pk>/timezone/", team_views.set_timezone, name="set_timezone"),
]
