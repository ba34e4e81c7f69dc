"""Every write to access tokens and runs, by reason:

- `lifecycle`: create, rotate, revoke (one, selected, a member's, leaked, suspended), shorten;
- `runs`: the run start (the hot path), a token's last use, the roll-ups;
- `retention`: removing old runs;
- `reminders`: expiry reminders to creators.

Each function is atomic and writes its audit event in the same transaction; those that act for
a member take the acting membership, lock what they change and ask `workspaces.permissions`
after the locked read. The plaintext token exists only in the return value of the functions
that create one; nothing stores or logs it.
"""
