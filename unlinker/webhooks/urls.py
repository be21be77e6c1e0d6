from django.urls import path

from . import views

app_name = "webhooks"
urlpatterns = [path("xero/", views.xero, name="xero")]
