from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from console.views import healthz
from tokens import api, gateway, turns
from workspaces.forms import EmailAuthenticationForm
from workspaces.views import accounts, home

urlpatterns = [
    # First: automation calls these most, and patterns are tried in order.
    path("api/v1/", include(api.urlpatterns)),
    path("codex/api/responses", turns.responses, name="codex_responses"),
    path("codex/", include(gateway.urlpatterns)),
    path("", home.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm,
                                     redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/password_change/", accounts.PasswordChangeView.as_view(),
         name="password_change"),
    path("accounts/password_reset/", accounts.PasswordResetView.as_view(),
         name="password_reset"),
    path("accounts/reset/<uidb64>/<token>/", accounts.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("invitations/<str:key>/", accounts.invitation, name="invitation"),
    path("invitations/<str:key>/sign-in/", accounts.invitation_sign_in, name="invitation_sign_in"),
    path("invitations/<str:key>/account/", accounts.invitation_create_account,
         name="invitation_account"),
    path("admin/settings/", home.settings_shortcut, name="settings_shortcut"),
    path("admin/access-tokens/", home.access_tokens_shortcut,
         name="access_tokens_shortcut"),
    path("w/<slug:slug>/", include("workspaces.urls")),
    path("w/<slug:slug>/admin/", include("tokens.urls")),
    path("django-admin/", admin.site.urls),
]

handler400 = "workspaces.views.errors.bad_request"
handler403 = "workspaces.views.errors.permission_denied"
handler404 = "workspaces.views.errors.not_found"
handler500 = "workspaces.views.errors.server_error"
