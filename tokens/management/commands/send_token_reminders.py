from django.core.management.base import BaseCommand

from tokens.services.reminders import send_token_reminders


class Command(BaseCommand):
    help = (
        "Mail each access token's creator a week before it expires and on the day. Each "
        "reminder goes once: run it every hour from cron (twice at once is safe)."
    )

    def handle(self, *args, **options):
        sent = send_token_reminders()
        self.stdout.write(f"{sent} reminder{'s' if sent != 1 else ''} sent.")
