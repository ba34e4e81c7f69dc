from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("access-tokens/", views.token_list, name="list"),
    path("access-tokens/new/", views.token_create, name="create"),
    path("access-tokens/revoke/", views.tokens_revoke_selected, name="revoke_selected"),
    path("access-tokens/<int:token_id>/", views.token_detail, name="detail"),
    path("access-tokens/<int:token_id>/revoke/", views.token_revoke, name="revoke"),
    path("access-tokens/<int:token_id>/rotate/", views.token_rotate, name="rotate"),
    path("members/<int:member_id>/revoke-tokens/", views.member_revoke_tokens,
         name="member_revoke_tokens"),
    path("settings/shorten-tokens/", views.shorten_tokens, name="shorten"),
    path("settings/revoke-suspended/", views.revoke_suspended, name="revoke_suspended"),
    path("governance/", views.governance, name="governance"),
    path("governance/export.csv", views.governance_csv, name="governance_csv"),
]
