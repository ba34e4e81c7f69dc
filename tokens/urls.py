from django.urls import path

from .views import federation, governance, service_accounts, tokens

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
    path("federation/", federation.rule_list, name="federation"),
    path("federation/new/", federation.rule_create, name="federation_create"),
    path("federation/<int:rule_id>/", federation.rule_detail, name="federation_rule"),
    path("federation/<int:rule_id>/edit/", federation.rule_edit, name="federation_edit"),
    path("federation/<int:rule_id>/test/", federation.rule_test, name="federation_test"),
    path("federation/<int:rule_id>/enable/", federation.rule_enable, name="federation_enable"),
    path("federation/<int:rule_id>/disable/", federation.rule_disable, name="federation_disable"),
    path("federation/<int:rule_id>/delete/", federation.rule_delete, name="federation_delete"),
    path("governance/", governance.governance, name="governance"),
    path("governance/export.csv", governance.governance_csv, name="governance_csv"),
]
