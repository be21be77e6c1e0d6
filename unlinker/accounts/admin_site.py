from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class SuperuserAdminSite(admin.AdminSite):
    """The Django admin is a tool for superusers (manage.py createsuperuser): the product's own
    pages manage connections, people and roles. Staff flags give no way in."""

    site_header = "Unlinker: Django admin (superusers only)"

    def has_permission(self, request):
        return request.user.is_active and request.user.is_superuser


class SuperuserAdminConfig(AdminConfig):
    """django.contrib.admin with the superusers-only site, in INSTALLED_APPS in its place."""

    default_site = "unlinker.accounts.admin_site.SuperuserAdminSite"
