from django.urls import path

from accounts import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
]
