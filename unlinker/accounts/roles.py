"""The three roles of the product, kept as Django groups so that the admin can assign them."""

from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

BROWSE = "accounts.browse"
QUEUE_UNLINK = "accounts.queue_unlink"
# Reading Actionstep or Xero on demand spends the firm's API allowance: operators and admins.
REFRESH = "accounts.refresh"
MANAGE_CONNECTIONS = "accounts.manage_connections"
CLEANUP_XERO = "accounts.cleanup_xero"

ROLES: dict[str, list[str]] = {
    "viewer": [BROWSE],
    "operator": [BROWSE, QUEUE_UNLINK, REFRESH],
    "admin": [BROWSE, QUEUE_UNLINK, REFRESH, MANAGE_CONNECTIONS, CLEANUP_XERO],
}


def ensure_roles(app_config, using="default", **kwargs):
    """post_migrate: create or correct the role groups. Safe to run any number of times."""
    create_permissions(app_config, using=using, verbosity=0)
    for role, perms in ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        codenames = [p.split(".", 1)[1] for p in perms]
        wanted = Permission.objects.using(using).filter(
            content_type__app_label="accounts", codename__in=codenames
        )
        group.permissions.set(wanted)


def role_of(user) -> str | None:
    """The user's role: the group of ROLES they hold (the highest, should they hold several).
    Reads `user.groups.all()`, so that a prefetch of the groups serves a whole list."""
    names = {group.name for group in user.groups.all()}
    return next((role for role in reversed(ROLES) if role in names), None)
