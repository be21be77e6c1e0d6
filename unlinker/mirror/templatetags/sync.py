from django import template

from unlinker.mirror.sync_selectors import sync_state as _sync_state

register = template.Library()


@register.simple_tag
def sync_state(connection):
    return _sync_state(connection)
