from django.urls import path

from . import views

app_name = "workspaces"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("admin/settings/", views.settings_page, name="settings"),
    path("admin/members/", views.members, name="members"),
    path("admin/members/invite/", views.member_invite, name="member_invite"),
    path("admin/invitations/<int:invitation_id>/resend/", views.invitation_resend,
         name="invitation_resend"),
    path("admin/invitations/<int:invitation_id>/cancel/", views.invitation_cancel,
         name="invitation_cancel"),
    path("admin/members/<int:member_id>/role/", views.member_role, name="member_role"),
    path("admin/members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("admin/groups/", views.groups, name="groups"),
    path("admin/groups/new/", views.group_create, name="group_create"),
    path("admin/groups/<int:group_id>/", views.group_detail, name="group"),
    path("admin/groups/<int:group_id>/rename/", views.group_rename, name="group_rename"),
    path("admin/groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
    path("admin/groups/<int:group_id>/members/add/", views.group_member_add,
         name="group_member_add"),
    path("admin/groups/<int:group_id>/members/<int:member_id>/remove/",
         views.group_member_remove, name="group_member_remove"),
    path("admin/roles/", views.roles, name="roles"),
    path("admin/roles/new/", views.role_create, name="role_create"),
    path("admin/roles/<int:role_id>/", views.role_edit, name="role"),
    path("admin/roles/<int:role_id>/delete/", views.role_delete, name="role_delete"),
    path("admin/audit-log/", views.audit_log, name="audit_log"),
    path("admin/audit-log/export.csv", views.audit_log_csv, name="audit_log_csv"),
]
