from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("access-tokens/", views.token_list, name="list"),
    path("access-tokens/new/", views.token_create, name="create"),
    path("access-tokens/<int:token_id>/revoke/", views.token_revoke, name="revoke"),
    path("settings/revoke-suspended/", views.revoke_suspended, name="revoke_suspended"),
    path("governance/", views.governance, name="governance"),
    path("governance/export.csv", views.governance_csv, name="governance_csv"),
]
