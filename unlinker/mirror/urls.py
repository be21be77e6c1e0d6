from django.urls import path

from . import views

app_name = "mirror"
urlpatterns = [
    path("payments/", views.payments, name="payments"),
    path("invoices/", views.invoices, name="invoices"),
    path("unlink/", views.unlink_selection, name="unlink"),
]
