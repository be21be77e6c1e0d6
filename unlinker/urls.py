from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("unlinker.core.urls")),
    path("accounts/", include("unlinker.accounts.urls")),
    path("connections/", include("unlinker.connections.urls")),
    path("linked/", include("unlinker.mirror.urls")),
    path("linked/", include("unlinker.mirror.sync_urls")),
    path("", include("unlinker.unlinking.urls")),  # unlink/... (the plan) and history/...
    path("reconciliation/", include("unlinker.reconciliation.urls")),
    path("webhooks/", include("unlinker.webhooks.urls")),
    path("admin/", admin.site.urls),
]
