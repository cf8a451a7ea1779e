"""The app's routes."""

urlpatterns: list[object] = []
