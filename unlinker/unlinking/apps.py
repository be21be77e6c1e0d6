from django.apps import AppConfig


class UnlinkingConfig(AppConfig):
    name = "unlinker.unlinking"
    label = "unlinking"
    verbose_name = "Unlink batches"
