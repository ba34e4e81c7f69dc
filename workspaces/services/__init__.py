"""Every write to workspaces, members, invitations, groups and custom roles, by reason:

- `settings`: creating a workspace; the Codex Local toggles and the maximum token lifetime;
- `members`: invitations, roles, removal;
- `groups`: groups and custom roles;
- `users`: a user's name, staff flag and deactivation (Django's admin).

Each function is atomic and writes its own audit event in the same transaction. Each takes the
acting membership (`acting`), locks what it changes (`selectors.lock_members` and friends, in
the order `workspaces.selectors` gives), and asks `permissions` again after the locked read, so
a decision is never taken on a stale copy; audit "before" values come from the locked rows. Bad
input raises `ServiceError` (a refusal by the policy, `Forbidden`) with a message fit for the
user, and changes nothing.
"""
