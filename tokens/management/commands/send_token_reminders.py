from django.core.management.base import BaseCommand

from tokens.services.reminders import send_token_reminders


class Command(BaseCommand):
    help = (
        "Queue the mail to each access token's creator a week before it expires and on the day "
        "(the mail worker sends it). Each reminder goes once: run it every hour from cron (twice "
        "at once is safe)."
    )

    def handle(self, *args, **options):
        queued = send_token_reminders()
        self.stdout.write(f"{queued} reminder{'s' if queued != 1 else ''} queued.")
