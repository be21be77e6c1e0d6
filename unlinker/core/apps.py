from functools import lru_cache

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "unlinker.core"
    label = "core"

    def ready(self):
        remember_render_signatures()


def remember_render_signatures():
    """django-tables2 inspects a column's render method's signature for every cell it renders;
    on a page of 50 rows that is about 15% of the page's server time (make bench). The answer
    never changes for a method, so it is remembered (a bounded cache: columns are per table)."""
    import django_tables2.utils as tables_utils

    if not hasattr(tables_utils.signature, "cache_info"):
        tables_utils.signature = lru_cache(maxsize=1024)(tables_utils.signature)
