from django.urls import path

from .views import governance, service_accounts, tokens

app_name = "tokens"

urlpatterns = [
    path("access-tokens/", tokens.token_list, name="list"),
    path("access-tokens/new/", tokens.token_create, name="create"),
    path("access-tokens/revoke/", tokens.tokens_revoke_selected, name="revoke_selected"),
    path("access-tokens/<int:token_id>/", tokens.token_detail, name="detail"),
    path("access-tokens/<int:token_id>/revoke/", tokens.token_revoke, name="revoke"),
    path("access-tokens/<int:token_id>/rotate/", tokens.token_rotate, name="rotate"),
    path("members/<int:member_id>/revoke-tokens/", tokens.member_revoke_tokens,
         name="member_revoke_tokens"),
    path("settings/shorten-tokens/", tokens.shorten_tokens, name="shorten"),
    path("settings/revoke-suspended/", tokens.revoke_suspended, name="revoke_suspended"),
    path("service-accounts/<int:service_account_id>/", service_accounts.service_account,
         name="service_account"),
    path("service-accounts/<int:service_account_id>/tokens/new/",
         service_accounts.service_account_token_create, name="service_account_token_create"),
    path("governance/", governance.governance, name="governance"),
    path("governance/export.csv", governance.governance_csv, name="governance_csv"),
]
