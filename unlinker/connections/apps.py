from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "unlinker.connections"
    label = "connections"
    verbose_name = "Connections"
