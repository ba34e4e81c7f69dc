from django.urls import path

from .views import audit, groups, home, members, service_accounts, settings

app_name = "workspaces"

urlpatterns = [
    path("", home.overview, name="overview"),
    path("admin/settings/", settings.settings_page, name="settings"),
    path("admin/members/", members.members, name="members"),
    path("admin/members/invite/", members.member_invite, name="member_invite"),
    path("admin/invitations/<int:invitation_id>/resend/", members.invitation_resend,
         name="invitation_resend"),
    path("admin/invitations/<int:invitation_id>/cancel/", members.invitation_cancel,
         name="invitation_cancel"),
    path("admin/members/<int:member_id>/role/", members.member_role, name="member_role"),
    path("admin/members/<int:member_id>/remove/", members.member_remove, name="member_remove"),
    path("admin/service-accounts/new/", service_accounts.service_account_create,
         name="service_account_create"),
    path("admin/service-accounts/<int:service_account_id>/edit/",
         service_accounts.service_account_update, name="service_account_update"),
    path("admin/service-accounts/<int:service_account_id>/remove/",
         service_accounts.service_account_remove, name="service_account_remove"),
    path("admin/groups/", groups.groups, name="groups"),
    path("admin/groups/new/", groups.group_create, name="group_create"),
    path("admin/groups/<int:group_id>/", groups.group_detail, name="group"),
    path("admin/groups/<int:group_id>/rename/", groups.group_rename, name="group_rename"),
    path("admin/groups/<int:group_id>/delete/", groups.group_delete, name="group_delete"),
    path("admin/groups/<int:group_id>/members/add/", groups.group_member_add,
         name="group_member_add"),
    path("admin/groups/<int:group_id>/members/<int:member_id>/remove/",
         groups.group_member_remove, name="group_member_remove"),
    path("admin/roles/", groups.roles, name="roles"),
    path("admin/roles/new/", groups.role_create, name="role_create"),
    path("admin/roles/<int:role_id>/", groups.role_edit, name="role"),
    path("admin/roles/<int:role_id>/delete/", groups.role_delete, name="role_delete"),
    path("admin/audit-log/", audit.audit_log, name="audit_log"),
    path("admin/audit-log/export.csv", audit.audit_log_csv, name="audit_log_csv"),
]
