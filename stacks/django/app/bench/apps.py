from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "framework-lab sample app"
