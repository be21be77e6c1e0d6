from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "unlinker.core"
    label = "core"
