from django.urls import path

from . import views

app_name = "mirror"
urlpatterns = [
    path("payments/", views.payments, name="payments"),
    path("invoices/", views.invoices, name="invoices"),
    path("<int:connection_id>/payments/", views.LinkedPaymentList.as_view(), name="payment_list"),
    path("<int:connection_id>/invoices/", views.LinkedInvoiceList.as_view(), name="invoice_list"),
]
