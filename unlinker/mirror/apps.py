from django.apps import AppConfig


class MirrorConfig(AppConfig):
    name = "unlinker.mirror"
    label = "mirror"
    verbose_name = "Linked records"
